"""Model checkpoints: round trip through the registry, weights_only loading, the
safetensors format, atomic writes."""

import re

import pytest
import torch

from orthocore import models
from orthocore.checkpoint import export_safetensors, load_model, read_checkpoint, save_checkpoint

safetensors_torch = pytest.importorskip("safetensors.torch")

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


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_checkpoint_with_non_finite_weights_is_refused_naming_file_and_tensor(tmp_path, value):
    model = models.create("digits_cnn")
    name, weight = next((n, p) for n, p in model.named_parameters() if n.endswith("weight"))
    with torch.no_grad():
        weight.view(-1)[7] = value
    path = tmp_path / "broken.ckpt"
    save_checkpoint(path, model, arch="digits_cnn", num_classes=10)
    with pytest.raises(ValueError, match=rf"broken\.ckpt.*'{re.escape(name)}' holds NaN or inf"):
        load_model(path)


def test_safetensors_round_trip_and_export(tmp_path):
    model = models.create("resnet20", num_classes=4).train()
    model(torch.rand(8, 3, 32, 32))
    extra = {"config": {"lam": 1.0, "references": ["a.ckpt"]}, "history": [[1, 91.5]]}
    torch_path, st_path = tmp_path / "model.ckpt", tmp_path / "model.safetensors"
    save_checkpoint(torch_path, model, arch="resnet20", num_classes=4, extra=extra)
    export_safetensors(torch_path, st_path)
    # any safetensors loader reads the weights; the metadata says how to rebuild the model
    plain = safetensors_torch.load_file(st_path)
    assert plain.keys() == model.state_dict().keys()
    assert all(torch.equal(plain[name], tensor) for name, tensor in model.state_dict().items())
    state = read_checkpoint(st_path)
    assert (state["arch"], state["num_classes"], state["extra"]) == ("resnet20", 4, extra)
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(load_model(st_path)(x), model.eval()(x), atol=0, rtol=0)
    # saving straight to .safetensors holds the same checkpoint
    save_checkpoint(tmp_path / "direct.safetensors", model, arch="resnet20", num_classes=4, extra=extra)
    direct = read_checkpoint(tmp_path / "direct.safetensors")
    assert {k: v for k, v in direct.items() if k != "state_dict"} == {k: v for k, v in state.items() if k != "state_dict"}
    assert all(torch.equal(direct["state_dict"][name], t) for name, t in state["state_dict"].items())


def test_safetensors_errors(tmp_path):
    model = models.create("digits_cnn")
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_checkpoint(tmp_path / "m.safetensors", model, arch="digits_cnn", num_classes=10, extra={"t": torch.ones(1)})
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left
    save_checkpoint(tmp_path / "m.ckpt", model, arch="digits_cnn", num_classes=10)
    with pytest.raises(ValueError, match="must end in .safetensors"):
        export_safetensors(tmp_path / "m.ckpt", tmp_path / "m.st")
    safetensors_torch.save_file({"w": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(ValueError, match="not an orthocore model checkpoint"):
        read_checkpoint(tmp_path / "foreign.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_checkpoint(tmp_path / "broken.safetensors")
