"""``orthocore security`` end to end on small digits models: it trains the adaptive
surrogates by the target's recorded method, reuses them on a second run, and writes the
tables, diagnostics and verdicts."""

import json

import pytest

from orthocore import cli
from orthocore.checkpoint import read_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("security")
    common = ["--max-epochs", "2", "--eval-every", "2", "--no-progress"]
    assert cli.main(["train", "--out", str(root / "k"), "--seed", "0", *common]) == 0
    assert cli.main(["train", "--out", str(root / "o"), "--seed", "1", *common]) == 0
    assert cli.main(["train", "--out", str(root / "m"), "--seed", "1", "--lambda", "2",
                     "--reference", str(root / "k" / "model.ckpt"), *common]) == 0  # fmt: skip
    return root


def _run(root, capsys, *extra):
    argv = ["security", "--target", str(root / "m" / "model.ckpt"), "--baseline", str(root / "o" / "model.ckpt"),
            "--reference", str(root / "k" / "model.ckpt"), "--out", str(root / "sec"), "--eps", "0.1,0.3",
            "--n-images", "40", "--white-box-steps", "5", "--restarts", "2", "--square-queries", "30", "--epochs", "1",
            "--adaptive", "2", "--train-surrogates", "1", "--no-progress", *extra]  # fmt: skip
    code = cli.main(argv)
    return code, capsys.readouterr()


def test_security_trains_its_surrogates_and_writes_the_verdicts(models, capsys):
    code, captured = _run(models, capsys)
    assert code == 0, captured.err
    report = json.loads((models / "sec" / "security.json").read_text())
    surrogates = {kind: [str(models / "sec" / path) for path in paths]  # recorded relative to the folder
                  for kind, paths in report["surrogates"].items()}
    assert len(surrogates["adaptive"]) == 2 and len(surrogates["adaptive_without_k"]) == 1
    assert len(surrogates["ordinary"]) == 1
    recorded = {path: read_checkpoint(path)["extra"]["config"] for kind in surrogates.values() for path in kind}
    reference = str(models / "k" / "model.ckpt")
    assert all(recorded[p]["references"] == [reference] and recorded[p]["lam"] == 2.0 for p in surrogates["adaptive"])
    (blind,) = surrogates["adaptive_without_k"]
    assert recorded[blind]["references"] != [reference]  # orthogonal to the attacker's own model, not to K
    assert read_checkpoint(recorded[blind]["references"][0])["extra"]["config"]["lam"] == 0.0
    assert all(config["seed"] >= 1000 for config in recorded.values())  # seeds the defender never used
    attacks = {row["attack"] for row in report["rows"]}
    assert {"white-box", "square", "transfer from K", "transfer from adaptive #0", "transfer from adaptive ensemble",
            "transfer from adaptive #1",
            "transfer from adaptive without K #0", "worst case"} <= attacks  # fmt: skip
    claims = {v["claim"]: v["outcome"] for v in report["verdicts"] if v["target"] == "m"}
    assert len(claims) == 5 and all(outcome for outcome in claims.values())
    # the target and the baseline, by run folder, and by default the baseline behind each of Table III's defenses
    assert set(report["diagnostics"]) == {"m", "o", "o + JPEG-Quality=80", "o + TVM-Weight=0.09",
                                          "o + Bit Reduction - Depth=1", "o + Bilateral-Window=9"}  # fmt: skip
    assert "verdicts" in captured.out and (models / "sec" / "security.md").is_file()
    trained = {p: p.stat().st_mtime_ns for p in (models / "sec" / "surrogates").rglob("model.ckpt")}
    assert len(trained) == 5  # 1 ordinary, 2 adaptive, the blind attacker's own model and 1 orthogonal to it
    code, _ = _run(models, capsys)  # a second run reuses every surrogate
    assert code == 0
    assert {p: p.stat().st_mtime_ns for p in (models / "sec" / "surrogates").rglob("model.ckpt")} == trained


def test_missing_checkpoints_fail_before_any_training(tmp_path, capsys):
    argv = ["security", "--target", str(tmp_path / "m.ckpt"), "--reference", str(tmp_path / "k.ckpt"),
            "--out", str(tmp_path / "sec")]  # fmt: skip
    assert cli.main(argv) == 2
    assert "model file not found" in capsys.readouterr().err
    assert not (tmp_path / "sec").exists()


def test_defenses_join_the_targets_in_front_of_the_baseline(models, capsys):
    code, captured = _run(models, capsys, "--defense", "JPEG-Quality=80", "--defense", "TVM-Weight=0.03, keep=0.5",
                          "--eot-samples", "2")  # fmt: skip
    assert code == 0, captured.err
    report = json.loads((models / "sec" / "security.json").read_text())
    assert set(report["diagnostics"]) == {"m", "o", "o + JPEG-Quality=80", "o + TVM-Weight=0.03, keep=0.5"}  # replaced
    assert report["metadata"]["white_box"]["o + TVM-Weight=0.03, keep=0.5"].endswith("EOT over 2 draws")
    transformed = [v for v in report["verdicts"] if v["target"].startswith("o + ")]
    assert len(transformed) == 6 and "white-box robustness through the defense" in transformed[1]["claim"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--defense", "JPEG-Quality=81"], "security_defenses must be one of"),
        (["--defense", "JPEG-Quality=80", "--no-baseline"], "defense: give --baseline"),
    ],
)
def test_bad_defenses_fail_before_any_work(models, tmp_path, capsys, extra, message):
    argv = ["security", "--target", str(models / "m" / "model.ckpt"), "--reference", str(models / "k" / "model.ckpt"),
            "--out", str(tmp_path / "sec"), *[a for a in extra if a != "--no-baseline"]]  # fmt: skip
    if "--no-baseline" not in extra:
        argv += ["--baseline", str(models / "o" / "model.ckpt")]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "sec").exists()
