"""``orthocore train`` and ``orthocore similarity``."""

import json

import pytest
import torch

from orthocore import cli, dispatch, models
from orthocore.checkpoint import load_model, save_checkpoint
from tests.conftest import write_cifar10_batches

pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_then_similarity_on_digits(tmp_path, capsys):
    out = tmp_path / "ordinary"
    assert cli.main(["train", "--out", str(out), "--max-epochs", "2", "--eval-every", "1", "--no-progress"]) == 0
    assert "validation accuracy by epoch: 1:" in capsys.readouterr().out
    orth = tmp_path / "orthogonal"
    argv = ["train", "--out", str(orth), "--lambda", "2", "--reference", str(out / "model.ckpt"), "--penalty", "square",
            "--max-epochs", "1", "--init", "xavier", "--no-progress"]
    assert cli.main(argv) == 0
    config = json.loads((orth / "run.json").read_text())["config"]
    assert (config["lam"], config["penalty"], config["init"]) == (2.0, "square", "xavier")
    capsys.readouterr()
    assert cli.main(["similarity", str(out / "model.ckpt"), str(orth / "model.ckpt"), "--data", "digits"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert "|delta|" in header and "± " in row and row.rstrip().endswith("359")
    # a .safetensors export is a checkpoint every command takes, with the same numbers
    assert cli.main(["export", str(orth / "model.ckpt"), str(tmp_path / "orth.safetensors")]) == 0
    capsys.readouterr()
    assert cli.main(["similarity", str(out / "model.ckpt"), str(tmp_path / "orth.safetensors"), "--data", "digits"]) == 0
    exported_row = capsys.readouterr().out.strip().splitlines()[1]
    assert exported_row.split()[2:] == row.split()[2:]  # all but the two paths
    assert cli.main(["export", str(orth / "model.ckpt"), str(tmp_path / "orth.pt")]) == 2


def test_train_resnet20_on_a_cifar10_folder(tmp_path, capsys):
    """BatchNorm model, 3-channel data, orthogonal to a reference, through the CLI."""
    write_cifar10_batches(tmp_path, per_batch=6, label=None)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ref.ckpt", models.create("resnet20"), arch="resnet20", num_classes=10)
    out = tmp_path / "run"
    argv = ["train", "--arch", "resnet20", "--data", f"cifar10:{tmp_path}", "--out", str(out), "--lambda", "1",
            "--reference", str(tmp_path / "ref.ckpt"), "--max-epochs", "1", "--batch-size", "8", "--augment", "--no-progress"]
    assert cli.main(argv) == 0
    model = load_model(out / "model.ckpt")
    assert model.net.bn1.num_batches_tracked.item() == 4  # 30 images in batches of 8: one update per step
    line = json.loads((out / "metrics.jsonl").read_text())
    assert 0 <= line["train_abs_delta"] <= 1


def test_train_errors_are_reported(tmp_path, capsys):
    assert cli.main(["train", "--out", str(tmp_path / "x"), "--lambda", "1", "--no-progress"]) == 2
    assert "orthocore train: error: references: λ > 0 needs at least one reference" in capsys.readouterr().err
    assert cli.main(["train", "--resume", "--out", str(tmp_path / "nothing")]) == 2
    assert "no training state" in capsys.readouterr().err
    assert cli.main(["similarity", str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt")]) == 2
    assert "model_a: no file at" in capsys.readouterr().err


def test_train_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: 128)" in help_text and "(default: abs)" in help_text
    assert "(default: the data's: digits_cnn for digits, fmnist_cnn for Fashion-MNIST" in help_text


def test_warnings_print_as_one_line(monkeypatch, capsys):
    import warnings

    from orthocore.cli import backends as backends_cli

    def warn(args):
        warnings.warn("only 342 of the requested 1000 images are classified correctly by every model")
        return 0

    monkeypatch.setattr(backends_cli, "cmd_backends", warn)
    assert cli.main(["backends"]) == 0
    err = capsys.readouterr().err
    assert err == "orthocore backends: warning: only 342 of the requested 1000 images are classified correctly by every model\n"


def test_models_that_do_not_fit_the_data_are_refused_before_any_work(tmp_path, capsys):
    """A CIFAR ResNet-20 as a reference for digits, or beside a digits CNN in similarity,
    is one line naming both shapes, not numbers and not PyTorch's "mat1 and mat2"."""
    digits, cifar = tmp_path / "digits.ckpt", tmp_path / "cifar.ckpt"
    save_checkpoint(digits, models.create("digits_cnn"), arch="digits_cnn", num_classes=10)
    save_checkpoint(cifar, models.create("resnet20"), arch="resnet20", num_classes=10)
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--lambda", "1", "--reference", str(cifar), "--no-progress"]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "cifar.ckpt" in error
    assert "images of shape (3, 32, 32)" in error and "images of shape (1, 8, 8)" in error
    assert not out.exists() or not any(out.iterdir())
    assert cli.main(["similarity", str(digits), str(cifar), "--data", "digits"]) == 2
    assert "(3, 32, 32)" in capsys.readouterr().err
    five = tmp_path / "five.ckpt"
    save_checkpoint(five, models.create("digits_cnn", num_classes=5), arch="digits_cnn", num_classes=5)
    assert cli.main(["attack", "--source", str(digits), "--target", str(five), "--data", "digits"]) == 2
    assert "has 5 classes, but the data has images of shape (1, 8, 8) and 10 classes" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", bytes(range(256)) * 4], ids=["empty", "zip", "random"])
def test_unreadable_checkpoints_are_one_line_and_never_suggest_weights_only_false(tmp_path, capsys, content):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    assert cli.main(["similarity", str(path), str(path), "--data", "digits"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "bad.ckpt' is truncated or not a checkpoint" in error
    assert "weights_only" not in error


def test_demo_seeds_flag(capsys):
    assert cli.build_parser().parse_args(["demo", "--seeds", "0,2"]).seeds == [0, 2]
    for bad in ("0,0", "-1", "a"):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["demo", "--seeds", bad])
        assert "expected distinct integers >= 0" in capsys.readouterr().err


def test_resume_refuses_flags_that_contradict_the_recorded_run(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(["train", "--out", out, "--max-epochs", "1", "--eval-every", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--out", out, "--lr", "0.5", "--seed", "3", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--lr 0.5 (recorded: 0.001)" in error and "--seed 3 (recorded: 0)" in error
    assert cli.main(["train", "--resume", "--out", out, "--max-epochs", "1", "--no-progress"]) == 0


def test_backends_check_runs_every_op_against_the_reference(monkeypatch, capsys):
    bit_depth = dispatch.registered()["bit_depth"]

    compiled_for = dispatch.OpBackends.compiled_for
    # The Triton interpreter takes half a minute on these sizes; the kernels have their own tests.
    monkeypatch.setattr(dispatch.OpBackends, "compiled_for", lambda self, device: [
        name for name in compiled_for(self, device) if name != "triton"])  # fmt: skip
    assert cli.main(["backends", "--check"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " cpu " in line and "max|err|" in line]
    ops_checked = {line.split(",")[0].split()[0] for line in lines}
    assert ops_checked == {"normalized_dot", "attack_step", "bit_depth", "jpeg", "bilateral", "tv_denoise", "batch_norm"}
    assert all(line.endswith("ok") for line in lines)
    wrong = dict(bit_depth.impls, cpu=lambda x, bits: x.clone())  # a broken kernel is caught
    monkeypatch.setattr(bit_depth, "impls", wrong)
    assert cli.main(["backends", "--check"]) == 1
    assert "MISMATCH" in capsys.readouterr().out
