"""`orthocore attack`: argument parsing and validation (the ε range syntax, attack names,
checkpoint paths) before any model is loaded."""

import json
import sys
import types

import pytest
import torch
from torch import nn

from orthocore import cli
from orthocore.cli import attack as attack_cli
from orthocore.model_specs import parse_model_spec
from orthocore.settings import eps_grid


def _parse(*argv):
    return cli.build_parser().parse_args(["attack", *argv])


def test_full_command_line():
    args = _parse(
        "--source", "a.ckpt", "--target", "b.ckpt", "--target", "c.ckpt",
        "--attacks", "fgsm,pgd,ifgsm,mifgsm", "--eps", "0.005:0.08:16", "--n-images", "200", "--seed", "3",
    )  # fmt: skip
    assert args.source == "a.ckpt" and args.target == ["b.ckpt", "c.ckpt"]
    assert args.attacks == ("fgsm", "pgd", "ifgsm", "mifgsm")
    assert len(args.eps) == 16 and args.eps[0] == pytest.approx(0.005) and args.eps[-1] == pytest.approx(0.08)
    assert args.eps[1] == pytest.approx(0.01)  # evenly spaced, both ends included
    assert args.n_images == 200 and args.seed == 3 and args.func is attack_cli.cmd_attack


def test_defaults_are_the_papers_protocol():
    args = _parse("--source", "a.ckpt")
    assert args.attacks == ("fgsm", "ifgsm", "pgd", "mifgsm") and args.n_images == 1000
    assert len(args.eps) == 16 and args.target == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.01,0.03, 0.05", (0.01, 0.03, 0.05)), ("0.02:0.02:1", (0.02,)), ("0:0.1:3", (0.0, 0.05, 0.1))],
)
def test_eps_syntax(text, expected):
    assert eps_grid(text) == pytest.approx(expected)
    assert _parse("--source", "a.ckpt", "--eps", text).eps == pytest.approx(expected)


@pytest.mark.parametrize("text", ["0.08:0.005:16", "0.005:0.08", "0.005:0.08:0", "a:b:c", "0.01,-0.02", "", "nan"])
def test_bad_eps_is_rejected_with_the_syntax(text, capsys):
    with pytest.raises(SystemExit):
        _parse("--source", "a.ckpt", "--eps", text)
    assert "--eps" in capsys.readouterr().err


def test_unknown_attack_is_rejected(capsys):
    with pytest.raises(SystemExit):
        _parse("--source", "a.ckpt", "--attacks", "fgsm,deepfool")
    assert "unknown attack 'deepfool'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse("--source", "a.ckpt", "--attacks", " , ")
    assert "at least one attack" in capsys.readouterr().err


def test_missing_checkpoint_fails_before_loading(tmp_path):
    present = tmp_path / "a.ckpt"
    present.write_bytes(b"")
    args = _parse("--source", str(present), "--target", str(tmp_path / "missing.ckpt"))
    with pytest.raises(SystemExit, match="model file not found: .*missing.ckpt"):
        attack_cli.cmd_attack(args)


def test_model_names_from_paths():
    assert attack_cli.model_names(["runs/ref.ckpt", "runs/ortho.ckpt"]) == ["ref", "ortho"]
    assert attack_cli.model_names(["a/model.ckpt", "b/model.ckpt", "c/x.pt"]) == ["a/model", "b/model", "c/x"]
    assert attack_cli.model_names(["runs/k/model.ckpt", "runs/k/model.ckpt"]) == ["runs/k/model#0", "runs/k/model#1"]
    assert attack_cli.model_names([]) == []  # `orthocore security` with no --surrogate


@pytest.mark.parametrize(("flag", "value"), [("--n-images", "0"), ("--seed", "-1"), ("--batch-size", "x")])
def test_bad_integers_are_rejected(flag, value, capsys):
    with pytest.raises(SystemExit):
        _parse("--source", "a.ckpt", flag, value)
    assert flag in capsys.readouterr().err


def test_command_runs_the_protocol_and_writes_results(tmp_path, monkeypatch, capsys):
    """The command's flow with stand-ins for the model loader and the dataset
    (orthocore.model_specs / orthocore.data provide the real ones)."""
    images = torch.rand(64, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    labels = images.mean((2, 3)).argmax(1)
    loaded = []

    def open_model(path, map_location="cpu", *, data=None, name="model"):
        assert data is not None, "every model is checked against the data it is used on"
        loaded.append((path, str(map_location)))
        model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))
        with torch.no_grad():
            model[2].weight.copy_(20 * torch.eye(3) + len(loaded) * 0.5 * torch.ones(3, 3).tril(-1))
            model[2].bias.zero_()
        return model

    stand_in = types.SimpleNamespace(open_model=open_model, parse_model_spec=parse_model_spec)
    monkeypatch.setitem(sys.modules, "orthocore.model_specs", stand_in)
    dataset = types.SimpleNamespace(open_dataset=lambda spec, split: (images, labels))
    monkeypatch.setitem(sys.modules, "orthocore.data", dataset)
    monkeypatch.setattr("orthocore.data", dataset, raising=False)
    for name in ("ref.ckpt", "ortho.ckpt"):
        (tmp_path / name).write_bytes(b"")
    out = tmp_path / "results" / "transfer"
    code = cli.main([
        "attack", "--source", str(tmp_path / "ref.ckpt"), "--target", str(tmp_path / "ortho.ckpt"),
        "--attacks", "fgsm,pgd", "--eps", "0:0.2:3", "--n-images", "20", "--device", "cpu", "--out", str(out),
    ])  # fmt: skip
    assert code == 0 and [path for path, _ in loaded] == [str(tmp_path / "ref.ckpt"), str(tmp_path / "ortho.ckpt")]
    printed = capsys.readouterr().out
    assert "ref" in printed and "ortho" in printed and "pgd" in printed
    document = json.loads(out.with_suffix(".json").read_text())
    assert len(document["rows"]) == 2 * 3 * 2 and document["metadata"]["images"] == 20
    assert all(row["fooling_percent"] == 0 for row in document["rows"] if row["eps"] == 0)
    assert len(out.with_suffix(".csv").read_text().splitlines()) == 1 + 12


def test_defend_names_the_target_and_orthogonal_models_apart(tmp_path, monkeypatch, capsys):
    """The README's defend command: every checkpoint is a ``model.ckpt`` in its own run
    folder, and the table names them by their folders (no "also the name of" collision)."""
    images = torch.rand(40, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    labels = images.mean((2, 3)).argmax(1)

    def open_model(path, map_location="cpu", *, data=None, name="model"):
        model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))
        with torch.no_grad():
            model[2].weight.copy_(20 * torch.eye(3))
            model[2].bias.zero_()
        return model

    monkeypatch.setattr("orthocore.model_specs.open_model", open_model)
    monkeypatch.setattr("orthocore.data.open_dataset", lambda spec, split: (images, labels))
    paths = {run: tmp_path / "runs" / run / "model.ckpt" for run in ("k", "k2", "m")}
    out = tmp_path / "table3"
    code = cli.main(["defend", "--source", str(paths["k"]), "--target", str(paths["k2"]), "--orthogonal",
                     str(paths["m"]), "--attacks", "fgsm", "--eps", "0.1,0.2", "--n-images", "10", "--device", "cpu",
                     "--no-progress", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    names = {row["target"] for row in json.loads(out.with_suffix(".json").read_text())["rows"]}
    assert names == {"k2/model", "m/model"}
