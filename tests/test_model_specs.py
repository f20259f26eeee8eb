"""Models a user brings (orthocore.model_specs): a factory with a weights file, a torchvision
model, a torch.export program; each checked against the data, none loaded by unpickling
code; and the commands that take them."""

import importlib
import io
import json
import textwrap
import zipfile

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from orthocore import cli, models
from orthocore.checkpoint import read_checkpoint, save_checkpoint
from orthocore.data import open_dataset
from orthocore.model_specs import ExportedModel, open_model, parse_model_spec, spec_digest

pytestmark = pytest.mark.usefixtures("one_thread")

USER_MODULE = """
    import torch
    from torch import nn


    def build():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))


    def five_classes():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 5))


    def not_a_model():
        return "a string"
"""


class RunsCode:
    """Pickled, it would create ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def digits():
    return open_dataset("digits", "test")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user's module ``user_nets`` on the import path."""
    (tmp_path / "user_nets.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield importlib.import_module("user_nets")
    monkeypatch.delitem(importlib.sys.modules, "user_nets", raising=False)


def _images(data, count=6):
    return torch.stack([data[i][0] for i in range(count)])


def _user_weights(user_module, path, *, wrap=None):
    torch.manual_seed(0)
    model = user_module.build().eval()
    state = model.state_dict()
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(wrap(state) if wrap else state, path)
    return model


def _export(model, path, data, *, dynamic=True):
    batch = {"x": {0: torch.export.Dim("batch")}} if dynamic else None
    program = torch.export.export(model.eval(), (_images(data, 2),), dynamic_shapes=batch)
    torch.export.save(program, path)


class _Wrapped(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)


def test_parse_tells_the_forms_apart(tmp_path):
    assert parse_model_spec("runs/k/model.ckpt").kind == "checkpoint"
    assert parse_model_spec("runs/k/model.safetensors").kind == "checkpoint"
    assert parse_model_spec("exports/net.pt2").kind == "export"
    spec = parse_model_spec("torchvision:resnet18:w.pth")
    assert (spec.kind, spec.module, spec.factory, spec.file.name) == ("torchvision", "torchvision", "resnet18", "w.pth")
    assert parse_model_spec("a.b_c:make:dir/w:1.pt").file.as_posix() == "dir/w:1.pt"  # colons after the second belong to the path
    odd = tmp_path / "x:y:z.ckpt"
    odd.write_bytes(b"")
    assert parse_model_spec(str(odd)).kind == "checkpoint"  # an existing file is a file
    with pytest.raises(ValueError, match="MODULE:FACTORY:WEIGHTS"):
        parse_model_spec("mypkg:build:")
    with pytest.raises(TypeError, match="model spec"):
        parse_model_spec(3)


@pytest.mark.parametrize("form", ["state dict", "safetensors", "under state_dict", "DDP prefix"])
def test_a_factory_with_weights_gives_the_users_model(tmp_path, digits, user_module, form):
    suffix = ".safetensors" if form == "safetensors" else ".pt"
    wrap = {"under state_dict": lambda s: {"state_dict": s, "epoch": 3},
            "DDP prefix": lambda s: {f"module.{k}": v for k, v in s.items()}}.get(form)  # fmt: skip
    original = _user_weights(user_module, tmp_path / f"w{suffix}", wrap=wrap)
    model = open_model(f"user_nets:build:{tmp_path / f'w{suffix}'}", data=digits)
    assert not model.training
    torch.testing.assert_close(model(_images(digits)), original(_images(digits)), rtol=0, atol=0)


def test_a_torchvision_model_takes_the_datas_classes(tmp_path, cifar10_folder):
    from torchvision.models import get_model

    data = open_dataset(f"cifar10:{cifar10_folder()}", "test")
    torch.manual_seed(0)
    original = get_model("resnet18", num_classes=10).eval()
    torch.save(original.state_dict(), tmp_path / "resnet18.pth")
    model = open_model(f"torchvision:resnet18:{tmp_path / 'resnet18.pth'}", data=data)
    torch.testing.assert_close(model(_images(data, 2)), original(_images(data, 2)))
    torch.save(get_model("resnet18").state_dict(), tmp_path / "imagenet.pth")  # 1000 classes
    with pytest.raises(ValueError, match="do not fit torchvision's resnet18 with 10 classes.*fc.weight"):
        open_model(f"torchvision:resnet18:{tmp_path / 'imagenet.pth'}", data=data)
    with pytest.raises(ValueError, match="torchvision has no model 'resnet7'"):
        open_model(f"torchvision:resnet7:{tmp_path / 'resnet18.pth'}", data=data)


def test_a_torchvision_model_that_cannot_take_the_images_is_refused(tmp_path, digits):
    from torchvision.models import get_model

    torch.save(get_model("resnet18", num_classes=10).state_dict(), tmp_path / "w.pth")
    with pytest.raises(ValueError, match=r"fails on the data's images of shape \(1, 8, 8\)"):
        open_model(f"torchvision:resnet18:{tmp_path / 'w.pth'}", data=digits)


def test_an_exported_program_runs_and_gives_input_gradients(tmp_path, digits):
    torch.manual_seed(0)
    original = models.create("digits_cnn").eval()
    _export(original, tmp_path / "net.pt2", digits)
    model = open_model(str(tmp_path / "net.pt2"), data=digits)
    assert isinstance(model, ExportedModel) and not model.training
    model.train()  # the program's own module refuses train()/eval(); the wrapper only keeps a flag
    x = _images(digits, 5).requires_grad_(True)
    y = x.detach().clone().requires_grad_(True)
    torch.testing.assert_close(model(x), original(y))
    model(x).logsumexp(1).sum().backward()
    original(y).logsumexp(1).sum().backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_an_exported_program_with_a_fixed_batch_is_refused(tmp_path, digits):
    _export(models.create("digits_cnn"), tmp_path / "fixed.pt2", digits, dynamic=False)
    with pytest.raises(ValueError, match="batches of exactly 2.*Dim\\('batch'\\)"):
        open_model(str(tmp_path / "fixed.pt2"), data=digits)


def test_an_exported_program_states_its_input_shape(tmp_path, digits):
    _export(models.create("digits_cnn"), tmp_path / "net.pt2", digits)
    larger = open_dataset("digits", "test")
    larger.images = torch.nn.functional.pad(larger.images, (10, 10, 10, 10))  # (1, 28, 28)
    with pytest.raises(ValueError, match=r"takes images of shape \(1, 8, 8\), but the data has images of shape \(1, 28, 28\)"):
        open_model(str(tmp_path / "net.pt2"), data=larger)


def test_bad_factories_are_named(tmp_path, digits, user_module):
    _user_weights(user_module, tmp_path / "w.pt")
    weights = tmp_path / "w.pt"
    with pytest.raises(ValueError, match="cannot import module 'no_such_pkg.nets'"):
        open_model(f"no_such_pkg.nets:build:{weights}", data=digits)
    with pytest.raises(ValueError, match="module 'user_nets' has no factory 'buld'"):
        open_model(f"user_nets:buld:{weights}", data=digits)
    with pytest.raises(ValueError, match=r"not_a_model\(\) returned str, not a torch.nn.Module"):
        open_model(f"user_nets:not_a_model:{weights}", data=digits)
    with pytest.raises(FileNotFoundError, match="no file at .*missing.pt"):
        open_model(f"user_nets:build:{tmp_path / 'missing.pt'}", data=digits)


def test_a_model_with_other_classes_or_shapes_is_refused_before_any_work(tmp_path, digits, user_module):
    torch.save(user_module.five_classes().state_dict(), tmp_path / "five.pt")
    with pytest.raises(ValueError, match=r"gives \(2, 5\) on a batch of 2 images .* 10 classes: expected \(2, 10\)"):
        open_model(f"user_nets:five_classes:{tmp_path / 'five.pt'}", data=digits)
    _user_weights(user_module, tmp_path / "w.pt")
    larger = open_dataset("digits", "test")
    larger.images = torch.nn.functional.pad(larger.images, (1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"fails on the data's images of shape \(1, 10, 10\)"):
        open_model(f"user_nets:build:{tmp_path / 'w.pt'}", data=larger)
    with pytest.raises(ValueError, match="do not fit user_nets.build"):
        open_model(f"user_nets:build:{tmp_path / 'five.pt'}", data=digits)


def test_weights_that_would_run_code_are_refused(tmp_path, digits, user_module):
    marker = tmp_path / "ran"
    torch.save({"0.weight": RunsCode(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="only loading code could build"):
        open_model(f"user_nets:build:{tmp_path / 'evil.pt'}", data=digits)
    with pytest.raises(ValueError, match="only loading code could build"):
        open_model(f"torchvision:resnet18:{tmp_path / 'evil.pt'}", data=digits)
    assert not marker.exists()


def _rewritten(source, target, change):
    """A copy of the .pt2 archive ``source`` with ``change(inner_name, bytes) -> bytes`` applied."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for member in old.namelist():
            inner = member.split("/", 1)[1] if "/" in member else member
            new.writestr(member, change(inner, old.read(member)))


def test_a_program_that_would_unpickle_code_is_refused(tmp_path, digits):
    _export(models.create("digits_cnn"), tmp_path / "net.pt2", digits)
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save(RunsCode(marker), buffer)

    def evil_inputs(inner, data):
        return buffer.getvalue() if inner.startswith("data/sample_inputs/") else data

    def pickled_weights(inner, data):
        if not inner.endswith("_weights_config.json"):
            return data
        config = json.loads(data)
        for payload in config["config"].values():
            payload["use_pickle"] = True
        return json.dumps(config).encode()

    _rewritten(tmp_path / "net.pt2", tmp_path / "evil_inputs.pt2", evil_inputs)
    _rewritten(tmp_path / "net.pt2", tmp_path / "pickled.pt2", pickled_weights)
    for name in ("evil_inputs.pt2", "pickled.pt2"):
        with pytest.raises(ValueError, match="only unpickling"):
            open_model(str(tmp_path / name), data=digits)
    assert not marker.exists()
    (tmp_path / "random.pt2").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable torch.export archive"):
        open_model(str(tmp_path / "random.pt2"), data=digits)


def test_the_digest_names_the_builder_and_the_bytes(tmp_path, user_module):
    _user_weights(user_module, tmp_path / "w.pt")
    spec = f"user_nets:build:{tmp_path / 'w.pt'}"
    assert spec_digest(spec) != spec_digest(f"user_nets:five_classes:{tmp_path / 'w.pt'}")
    before = spec_digest(spec)
    torch.save({}, tmp_path / "w.pt")
    assert spec_digest(spec) != before


def test_attack_takes_a_factory_source_and_an_exported_target(tmp_path, digits, user_module, capsys):
    _user_weights(user_module, tmp_path / "w.pt")
    _export(models.create("digits_cnn"), tmp_path / "net.pt2", digits)
    source = f"user_nets:build:{tmp_path / 'w.pt'}"
    code = cli.main(["attack", "--source", source, "--target", str(tmp_path / "net.pt2"), "--attacks", "fgsm",
                     "--eps", "0.1", "--n-images", "10", "--device", "cpu", "--no-progress",
                     "--out", str(tmp_path / "t")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert {(row["model"], row["role"]) for row in rows} == {("w", "source"), ("net", "target")}
    assert all(row["total"] > 0 and 0 <= row["fooling_percent"] <= 100 for row in rows)
    with pytest.raises(SystemExit, match="model file not found: user_nets:build:.*none.pt"):
        cli.main(["attack", "--source", f"user_nets:build:{tmp_path / 'none.pt'}", "--device", "cpu"])


def test_training_against_a_users_reference(tmp_path, user_module):
    """λ > 0 against a reference the user brings: its penalty trains, the run records the
    spec, and the run's key changes with the reference's weights."""
    _user_weights(user_module, tmp_path / "w.pt")
    spec = f"user_nets:build:{tmp_path / 'w.pt'}"
    out = tmp_path / "m"
    assert cli.main(["train", "--out", str(out), "--lambda", "1", "--reference", spec, "--max-epochs", "1",
                     "--eval-every", "1", "--no-progress"]) == 0  # fmt: skip
    assert read_checkpoint(out / "model.ckpt")["extra"]["config"]["references"] == [spec]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics and metrics[-1]["val_abs_delta"] >= 0


def test_an_orthocore_checkpoint_is_still_read_as_before(tmp_path, digits):
    model = models.create("digits_cnn").eval()
    save_checkpoint(tmp_path / "m.ckpt", model, arch="digits_cnn", num_classes=10)
    loaded = open_model(str(tmp_path / "m.ckpt"), data=digits)
    torch.testing.assert_close(loaded(_images(digits)), model(_images(digits)))


@pytest.mark.parametrize(("arch", "shape"), [("digits_cnn", (1, 8, 8)), ("resnet20", (3, 32, 32))])
def test_export_writes_a_program_that_runs_as_the_checkpoint_does(tmp_path, arch, shape, capsys):
    torch.manual_seed(0)
    model = models.create(arch).eval()
    save_checkpoint(tmp_path / "m.ckpt", model, arch=arch, num_classes=10)
    assert cli.main(["export", str(tmp_path / "m.ckpt"), str(tmp_path / "m.pt2")]) == 0
    program = open_model(str(tmp_path / "m.pt2"))
    for batch in (1, 5):  # any batch size
        x = torch.rand(batch, *shape)
        torch.testing.assert_close(program(x), model(x))
    assert cli.main(["export", str(tmp_path / "m.ckpt"), str(tmp_path / "m.onnx")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
