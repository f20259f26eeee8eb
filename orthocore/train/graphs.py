"""The whole training step as one CUDA graph, replayed batch after batch.

A step of orthogonal training launches hundreds of small kernels: the forward, the input
gradient with its graph (``torch.func.grad``), δ and the penalty, the double backward and
the optimizer's update. With static shapes the launches are the same every batch, so
:class:`CapturedStep` records them once into a :class:`torch.cuda.CUDAGraph` and replays
them, following PyTorch's whole-network capture recipe
(https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs):

1. *Static inputs*: the first call allocates one tensor per input; every call copies its
   batch into them.
2. *Warm-up*: the first ``warmup`` calls run the step eagerly on a side stream (they are
   real training steps), so that lazy initialisation (cuBLAS/cuDNN handles, Triton
   autotuning, the optimizer's state) happens before capture.
3. *Capture*: the next call zeroes the gradients (``set_to_none=True``, so the captured
   backward allocates them from the graph's memory pool and replays write them afresh,
   no zeroing needed) and records the step on the same side stream; capture runs no
   kernel, so the graph is then replayed for that call's batch.
4. *Replay*: every later call copies its batch in and replays the graph; the step's
   outputs are static tensors the graph rewrites.

What the step may do is what a graph can hold: no host synchronisation (``.item()``, a
boolean mask), no shape that depends on data, no Python decision on a tensor's value;
an optimizer with device-side state (``torch.optim.Adam(capturable=True)``; SGD has no
host state); autocast only with ``cache_enabled=False``. Python values the step reads
(the learning rate, λ) are frozen into the graph at capture.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

# torch.optim warns once when a capturable optimizer steps outside a capture: the warm-up does so on purpose.
_UNCAPTURED_STEP_WARNING = "This instance was constructed with capturable=True"


def _describe(t: Tensor | None) -> str:
    return "None" if t is None else f"{tuple(t.shape)} {t.dtype}"


class CapturedStep:
    """A training step, warmed up eagerly and then replayed from one CUDA graph.

    Args:
        step: ``step(**inputs) -> outputs``: forward, backward and ``optimizer.step()``
            for one batch, *without* zeroing the gradients first (:class:`CapturedStep`
            does that), returning a tuple of detached tensors (or None) — the values the
            caller logs. Every input is a tensor or None, the same names every call.
        optimizer: the optimizer ``step`` steps (``capturable=True`` where it has the option).
        device: the CUDA device the step computes on.
        warmup: eager steps before the capture (PyTorch's recipe: 3).

    Example (a model whose batch is always 64 images of 3 × 32 × 32)::

        step = CapturedStep(train_step, optimizer, torch.device("cuda"))
        for x, y in loader:
            loss, ce, delta = step(x=x, y=y, reference_grads=cached[index])
    """

    def __init__(self, step: Callable[..., tuple[Tensor | None, ...]], optimizer: torch.optim.Optimizer,
                 device: torch.device, *, warmup: int = 3) -> None:  # fmt: skip
        self.step, self.optimizer, self.device, self.warmup = step, optimizer, device, warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.steps_taken = 0
        self._stream = torch.cuda.Stream(device)  # the warm-up's and the capture's
        self._inputs: dict[str, Tensor | None] = {}
        self._outputs: tuple[Tensor | None, ...] = ()

    def __call__(self, **inputs: Tensor | None) -> tuple[Tensor | None, ...]:
        """One training step on this batch.

        Args:
            inputs: the step's tensors, e.g. ``x`` :math:`(B, C, H, W)`, ``y`` :math:`(B,)`,
                ``reference_grads`` :math:`(R, B', C, H, W)` or None, ``rows``
                :math:`(k,)` or None: each with the shape, dtype and device (or the
                None) of the first call's.

        Returns:
            The step's outputs. After the capture they are the graph's static tensors,
            rewritten by the next call: read (or accumulate) them before calling again.

        Raises:
            ValueError: an input whose shape, dtype or presence differs from the first call's
                (the graph holds the first call's shapes).
        """
        with torch.cuda.device(self.device):
            if self.steps_taken == 0:
                self._inputs = {name: None if t is None else torch.empty_like(t) for name, t in inputs.items()}
            self._copy_in(inputs)
            self.steps_taken += 1
            if self.steps_taken <= self.warmup:
                return self._warm_up()
            if self.graph is None:
                self._capture()
            self.graph.replay()
            return self._outputs

    def _copy_in(self, inputs: dict[str, Tensor | None]) -> None:
        if inputs.keys() != self._inputs.keys():
            raise ValueError(f"inputs: the captured step takes {sorted(self._inputs)}, got {sorted(inputs)}")
        for name, value in inputs.items():
            static = self._inputs[name]
            if static is None and value is None:
                continue
            if static is None or value is None or value.shape != static.shape or value.dtype != static.dtype:
                raise ValueError(f"{name}: the captured step takes {_describe(static)}, got {_describe(value)}; "
                                 "a batch of another shape must take the eager step")  # fmt: skip
            static.copy_(value)

    def _warm_up(self) -> tuple[Tensor | None, ...]:
        """One eager step on the side stream (where the capture will run)."""
        current = torch.cuda.current_stream()
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_UNCAPTURED_STEP_WARNING, category=UserWarning)
            self.optimizer.zero_grad(set_to_none=True)
            outputs = self.step(**self._inputs)
        current.wait_stream(self._stream)
        for output in outputs:  # read on the current stream: their memory is not reused before it has
            if output is not None:
                output.record_stream(current)
        return outputs

    def _capture(self) -> None:
        """Records the step into :attr:`graph`; the outputs become static tensors."""
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=self._stream):
            self._outputs = self.step(**self._inputs)
