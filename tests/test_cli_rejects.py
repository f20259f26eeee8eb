"""Every command refuses bad input with one line and exit 2, before any work: the whole
working folder (outputs, checkpoints, data) is byte for byte what it was before the call.

Each class of bad input of the hardening work is tried on each command that takes it:
non-finite or out-of-range numbers, unknown devices, missing / truncated / NaN-weight
checkpoints, models that do not match the data or each other, bad data folders and bad
configs."""

import math
import pickle

import pytest
import torch

from orthocore import cli, models
from orthocore.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Checkpoints and data folders, good and bad, shared by every case."""
    root = tmp_path_factory.mktemp("rejects")
    torch.manual_seed(0)
    save_checkpoint(root / "digits.ckpt", models.create("digits_cnn"), arch="digits_cnn", num_classes=10)
    save_checkpoint(root / "digits2.ckpt", models.create("digits_cnn"), arch="digits_cnn", num_classes=10)
    save_checkpoint(root / "resnet.ckpt", models.create("resnet20"), arch="resnet20", num_classes=10)
    poisoned = models.create("digits_cnn")
    with torch.no_grad():
        next(poisoned.parameters()).view(-1)[3] = math.nan
    save_checkpoint(root / "nan.ckpt", poisoned, arch="digits_cnn", num_classes=10)
    (root / "truncated.ckpt").write_bytes((root / "digits.ckpt").read_bytes()[:300])
    images = root / "images" / "cat"
    images.mkdir(parents=True)
    (images / "a.png").write_text("not an image")
    (root / "images" / "dog").mkdir()
    (root / "images" / "dog" / "b.png").write_bytes(b"")
    cifar = root / "cifar"
    cifar.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (cifar / name).write_bytes(b"" if name == "test_batch" else pickle.dumps({b"data": [], b"labels": []}))
    (root / "lambdas.toml").write_text(f'out = "{root / "study"}"\nlambdas = 1.0\n')
    (root / "defenses.toml").write_text(f'out = "{root / "study"}"\ndefenses = "no"\n')
    return root


def _snapshot(root):
    return {path.relative_to(root): path.read_bytes() if path.is_file() else None for path in sorted(root.rglob("*"))}


CASES = {
    # train
    "train λ = inf": ["train", "--out", "{o}/run", "--lambda", "inf", "--reference", "{f}/digits.ckpt"],
    "train negative seed": ["train", "--out", "{o}/run", "--seed", "-1"],
    "train unknown device": ["train", "--out", "{o}/run", "--device", "banana"],
    "train CUDA without a GPU": ["train", "--out", "{o}/run", "--device", "cuda"],
    "train reference of another input shape": ["train", "--out", "{o}/run", "--lambda", "1", "--reference",
                                               "{f}/resnet.ckpt"],
    "train NaN-weight reference": ["train", "--out", "{o}/run", "--lambda", "1", "--reference", "{f}/nan.ckpt"],
    "train truncated reference": ["train", "--out", "{o}/run", "--lambda", "1", "--reference", "{f}/truncated.ckpt"],
    "train bad image files": ["train", "--out", "{o}/run", "--data", "folder:{f}/images"],
    "train zero-byte CIFAR batch": ["train", "--out", "{o}/run", "--arch", "resnet20", "--data", "cifar10:{f}/cifar"],
    # similarity
    "similarity of mismatched models": ["similarity", "{f}/digits.ckpt", "{f}/resnet.ckpt"],
    "similarity NaN weights": ["similarity", "{f}/digits.ckpt", "{f}/nan.ckpt"],
    # attack
    "attack ε NaN": ["attack", "--source", "{f}/digits.ckpt", "--target", "{f}/digits2.ckpt", "--eps", "nan",
                     "--out", "{o}/res"],
    "attack negative ε": ["attack", "--source", "{f}/digits.ckpt", "--eps", "-0.1", "--out", "{o}/res"],
    "attack target of another input shape": ["attack", "--source", "{f}/digits.ckpt", "--target", "{f}/resnet.ckpt",
                                             "--out", "{o}/res"],
    "attack truncated target": ["attack", "--source", "{f}/digits.ckpt", "--target", "{f}/truncated.ckpt",
                                "--out", "{o}/res"],
    "attack unknown device": ["attack", "--source", "{f}/digits.ckpt", "--device", "banana", "--out", "{o}/res"],
    "attack unknown attack": ["attack", "--source", "{f}/digits.ckpt", "--attacks", "fgsm,cw", "--out", "{o}/res"],
    # defend
    "defend NaN-weight orthogonal": ["defend", "--source", "{f}/digits.ckpt", "--target", "{f}/digits2.ckpt",
                                     "--orthogonal", "{f}/nan.ckpt", "--out", "{o}/table3"],
    "defend mismatched target": ["defend", "--source", "{f}/digits.ckpt", "--target", "{f}/resnet.ckpt",
                                 "--out", "{o}/table3"],
    "defend bad data folder": ["defend", "--source", "{f}/digits.ckpt", "--target", "{f}/digits2.ckpt",
                               "--data", "folder:{f}/images", "--out", "{o}/table3"],
    # security
    "security mismatched baseline": ["security", "--target", "{f}/digits.ckpt", "--baseline", "{f}/resnet.ckpt",
                                     "--reference", "{f}/digits2.ckpt", "--out", "{o}/security"],
    "security truncated reference": ["security", "--target", "{f}/digits.ckpt", "--reference", "{f}/truncated.ckpt",
                                     "--out", "{o}/security"],
    "security NaN-weight target": ["security", "--target", "{f}/nan.ckpt", "--reference", "{f}/digits.ckpt",
                                   "--out", "{o}/security"],
    "security λ = inf": ["security", "--target", "{f}/digits.ckpt", "--reference", "{f}/digits2.ckpt",
                         "--lambda", "inf", "--out", "{o}/security"],
    # study and export
    "run a list given as a number": ["run", "--config", "{f}/lambdas.toml"],
    "run a string given as a bool": ["run", "--config", "{f}/defenses.toml"],
    "demo seeds not distinct": ["demo", "--seeds", "0,0", "--out", "{o}/demo"],
    "export NaN weights": ["export", "{f}/nan.ckpt", "{o}/nan.safetensors"],
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_rejected_before_any_work(case, files, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "res").mkdir(parents=True)
    (out / "res" / "kept.csv").write_text("an earlier result\n")
    argv = [arg.format(f=files, o=out) for arg in CASES[case]]
    before, inputs = _snapshot(tmp_path), _snapshot(files)
    try:
        code = cli.main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    first, *listed = err.splitlines()  # one error line; a folder's bad files are listed under it, indented
    assert first.startswith(f"orthocore {argv[0]}: error: ") and all(line.startswith("  ") for line in listed), err
    assert "Traceback" not in err and "weights_only" not in err, err
    assert _snapshot(tmp_path) == before and _snapshot(files) == inputs
