"""The single sources of truth shared by every layer: device resolution, the version
record, eval mode, accuracy and the attack names."""

import platform
import subprocess
import sys

import pytest
import torch
from torch import nn

import orthocore
from orthocore import attacks, distributed, runtime
from orthocore.metrics import accuracy
from orthocore.modes import eval_mode


def test_the_one_device_entry_point():
    assert distributed.device("cpu") == torch.device("cpu")
    assert distributed.device(torch.device("cpu")) == torch.device("cpu")
    assert distributed.device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert distributed.device(None, model=nn.Linear(2, 2)) == torch.device("cpu")
    assert distributed.device(None, model=nn.ReLU()) == torch.device("cpu")  # no parameters
    for bad in ("banana", "meta", "cuda:x"):
        with pytest.raises(ValueError, match="device: expected one of auto, cpu, cuda"):
            distributed.device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="'cuda' requested but no CUDA device is available"):
        distributed.device("cuda")


def test_versions_record():
    record = runtime.versions()
    assert record["orthocore"] == orthocore.__version__ and record["torch"] == str(torch.__version__)
    assert record["backends"]["reference"] is True
    assert {"python", "platform", "numpy", "torchvision", "cuda"} <= set(record)


def test_eval_mode_restores_each_mode_even_on_error():
    a, b = nn.Dropout().train(), nn.Dropout().eval()
    with pytest.raises(RuntimeError, match="inside"):
        with eval_mode(a, b, torch.relu):  # a plain function is left alone
            assert not a.training and not b.training
            raise RuntimeError("inside")
    assert a.training and not b.training


def test_accuracy_in_eval_mode_and_restored():
    class Picky(nn.Module):
        def forward(self, x):
            assert not self.training, "accuracy must evaluate in eval mode"
            return torch.stack([x.sum(1), -x.sum(1)], 1)

    model = Picky().train()
    data = torch.utils.data.TensorDataset(torch.tensor([[1.0], [-1.0], [2.0], [3.0]]), torch.tensor([0, 1, 1, 0]))
    assert accuracy(model, data, torch.device("cpu")) == 75.0
    assert model.training


def test_attack_names_are_the_registry():
    assert set(attacks.PAPER_ATTACKS) <= set(attacks.ATTACKS)
    assert attacks.attack_names(["pgd"]) == ("pgd",)
    with pytest.raises(ValueError, match="unknown attack 'cw'; expected one of fgsm, ifgsm, pgd, mifgsm, difgsm"):
        attacks.attack_names(["fgsm", "cw"])
    for empty in ([], (), "fgsm"):
        with pytest.raises(ValueError, match="at least one attack"):
            attacks.attack_names(empty)


# A step-like pattern: twelve tensors of 4, 8 and 16 MiB allocated, written and freed,
# five times over; prints the page faults per round after a first round.
_ALLOCATIONS = """
import resource, sys, torch
from orthocore.runtime import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory() and retain_freed_memory()  # repeated calls are harmless
def round():
    kept = [torch.ones(1 << (20 + i % 3)) for i in range(12)]
    del kept
round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    round()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def _page_faults_per_round(mode: str) -> float:
    run = subprocess.run([sys.executable, "-c", _ALLOCATIONS, mode], capture_output=True, text=True, check=True)
    return float(run.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_retained_memory_is_reused_instead_of_faulted_in_again():
    touched = 4 * 28 * (1 << 20) // 4096  # pages written per round: 4 × (4 + 8 + 16) MiB
    default, retained = _page_faults_per_round("default"), _page_faults_per_round("retain")
    assert retained < touched / 4  # most pages are the last round's
    assert retained * 3 < default  # and that is the setting's doing


def test_retain_freed_memory_without_mallopt_says_so(monkeypatch):
    class NoMallopt:
        def __init__(self, name):
            pass

    monkeypatch.setattr(runtime.ctypes, "CDLL", NoMallopt)
    assert runtime.retain_freed_memory() is False


def test_retain_freed_memory_is_left_off_under_torchrun(monkeypatch):
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost",
                        "MASTER_PORT": "29500"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert runtime.retain_freed_memory() is False
