"""The example programs in python/ run end to end on a tiny CIFAR-10 folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "python"
PROGRAMS = ["cifar10_table1.py", "cifar10_fig5.py", "cifar10_table3.py", "torchvision_model.py"]


def _run(program, *argv, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(EXAMPLES / program), *argv], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)  # fmt: skip


@pytest.mark.parametrize("program", PROGRAMS)
def test_help(program, tmp_path):
    result = _run(program, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "--data" in result.stdout


def test_table1_fig5_table3_on_a_tiny_cifar_folder(tmp_path, cifar10_folder):
    data = cifar10_folder()  # one class: every model learns to answer it, so evaluations find images
    runs = tmp_path / "runs"
    result = _run("cifar10_table1.py", "--data", str(data), "--arch", "resnet20", "--out", str(runs),
                  "--lambda", "1", "--max-epochs", "3", "--eval-every", "3", "--batch-size", "8", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("reference") and lines[3].startswith("orthogonal") and "±" in lines[3]
    for name in ("reference", "ordinary", "orthogonal"):
        assert (runs / name / "model.ckpt").is_file()
    result = _run("cifar10_fig5.py", "--data", str(data), "--runs", str(runs), "--attacks", "fgsm",
                  "--n-images", "8", "--figure", str(tmp_path / "fig5.png"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fig5.png").read_bytes()[:4] == b"\x89PNG"
    result = _run("cifar10_table3.py", "--data", str(data), "--runs", str(runs), "--attacks", "fgsm",
                  "--n-images", "8", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "JPEG-Quality=80" in result.stdout and "Bilateral-Window=9" in result.stdout


def test_a_torchvision_model_on_a_tiny_cifar_folder(tmp_path, cifar10_folder):
    """A resnet18 that answers class 3 whatever it sees (the folder's only class): every
    image counts, and neither white-box nor transferred attacks can fool it."""
    import torch
    from torchvision.models import get_model

    data = cifar10_folder()
    model = get_model("resnet18", num_classes=10)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(10 * torch.nn.functional.one_hot(torch.tensor(3), 10))
    torch.save(model.state_dict(), tmp_path / "constant.pth")
    spec = f"torchvision:resnet18:{tmp_path / 'constant.pth'}"
    result = _run("torchvision_model.py", "--data", str(data), "--model", spec, "--source", spec, "--attacks",
                  "fgsm,pgd", "--eps", "0.03,0.1", "--n-images", "8", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("fgsm", "pgd"))]
    assert len(rows) == 2 * 2 * 2 and all(cell == "0.0%" for row in rows for cell in row[2:])
