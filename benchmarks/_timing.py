"""What the benchmark files share: the device they time on, and timed callables that wait
for the GPU, so that a benchmark measures the work and not only its launch."""

import torch

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronized(fn):
    """``fn`` followed by a device synchronisation on a GPU."""

    def run():
        out = fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return out

    return run
