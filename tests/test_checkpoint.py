"""Model checkpoints: round trip through the registry, weights_only loading, atomic writes."""

import pytest
import torch

from orthocore import models
from orthocore.checkpoint import load_model, read_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("arch, shape", [("digits_cnn", (1, 8, 8)), ("resnet20", (3, 32, 32))])
def test_round_trip(tmp_path, arch, shape):
    model = models.create(arch, num_classes=4).train()
    model(torch.rand(8, *shape))  # moves BatchNorm statistics away from their initial values
    path = tmp_path / "sub" / "model.ckpt"
    save_checkpoint(path, model, arch=arch, num_classes=4, extra={"note": "x", "acc": [1.5, 2.0]})
    raw = torch.load(path, weights_only=True)
    assert raw["arch"] == arch and raw["num_classes"] == 4 and raw["extra"] == {"note": "x", "acc": [1.5, 2.0]}
    loaded = load_model(path)
    assert not loaded.training
    x = torch.rand(3, *shape)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    model = models.create("digits_cnn")
    save_checkpoint(path, model, arch="digits_cnn", num_classes=10)
    before = path.read_bytes()

    def fail_midway(obj, file, *args, **kwargs):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, models.create("digits_cnn"), arch="digits_cnn", num_classes=10)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]  # no temporary file left


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="arch: unknown model"):
        save_checkpoint(tmp_path / "a.ckpt", models.create("digits_cnn"), arch="lenet", num_classes=10)
    with pytest.raises(FileNotFoundError, match="no file"):
        load_model(tmp_path / "missing.ckpt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an orthocore model checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
