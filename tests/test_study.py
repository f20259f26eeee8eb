"""The study pipeline: caching, resuming after kill -9, and bad input before training."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from orthocore.study import StudyConfig, pipeline, run_study
from orthocore.train import trainer


def _tiny(out) -> StudyConfig:
    return StudyConfig(
        out=str(out), max_epochs=2, eval_every=1, lambdas=[1.0], attacks=["fgsm"], eps=[0.1, 0.3],
        defense_eps=[0.1, 0.2], n_images=30, gradcam_images=2, device="cpu", security_eps=[0.1, 0.3], adaptive=2,
        adaptive_without_k=1, white_box_steps=3, restarts=1, square_queries=10, seeds=[0], workers=1,
    )  # fmt: skip


@contextlib.contextmanager
def _one_thread():
    """This process on one thread, as each of two workers on the 2-core machine is."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    with _one_thread():
        return out, run_study(_tiny(out), progress=False)


def _measured(results: dict) -> dict:
    """Everything a study measured, without its timings."""
    models = [{k: v for k, v in m.items() if not k.startswith("train_seconds")} for m in results["models"]]
    security = {k: results["security"][k] for k in ("rows", "diagnostics", "verdicts")}
    return {"models": models, "transfer": results["transfer"], "defenses": results["defenses"], "security": security}


def test_two_workers_measure_what_one_does(finished, tmp_path):
    out, results = finished
    config = _tiny(tmp_path / "run")
    config.workers = 2
    with _one_thread():
        parallel = run_study(config, progress=False)
    assert _measured(parallel) == _measured(results)
    assert len(list((tmp_path / "run").glob("models/*/study_timing.json"))) == len(results["models"])


def test_finished_study_writes_everything(finished):
    out, results = finished
    roles = {"reference", "ordinary", "surrogate", "orthogonal", "private", "secret"}
    assert results["data"] == {"spec": "digits", "images": {"train": 1438, "val": 359, "test": 359}}
    assert results["notes"][0].startswith("Data: digits, 1,438 training and 359 validation images")
    assert "white-box PGD 3 steps × 1 restart, Square 10 queries" in results["notes"][2]
    assert {m["role"] for m in results["models"]} == roles
    assert {r["source"] for r in results["transfer"]} == {"reference", "surrogate"}
    assert {r["defense"] for r in results["defenses"]} >= {"none", "JPEG-Quality=80"}
    for name in ("results.json", "report.html", "report.md", "panels.npz", "figures/gradcam.png",
                 "figures/perturbations.png", "figures/fooling_reference.png", "figures/fooling_surrogate.png"):
        assert (out / name).is_file(), name
    security = results["security"]
    transformed = [f"ordinary + {label}" for label in ("JPEG-Quality=80", "TVM-Weight=0.09", "Bit Reduction - Depth=1",
                                                        "Bilateral-Window=9")]
    assert {r["target"] for r in security["rows"]} == {"ordinary", "orthogonal-λ1", "secret-λ1", *transformed}
    assert security["white_box"]["ordinary + JPEG-Quality=80"] == (
        "PGD through the exact defense, BPDA with the identity backward")
    attacks = {r["attack"] for r in security["rows"]}
    assert {"white-box", "square", "transfer from K", "transfer from surrogate", "transfer from surrogate #2",
            "transfer from surrogate ensemble", "transfer from adaptive ensemble",
            "transfer from adaptive without K #0", "worst case"} <= attacks  # fmt: skip
    assert [v["target"] for v in security["verdicts"]] == ["orthogonal-λ1"] * 5 + ["secret-λ1"] * 6 + [
        name for name in transformed for _ in range(3)]
    assert "secret references make it harder" in security["verdicts"][10]["claim"]
    assert "white-box robustness through the defense" in security["verdicts"][-2]["claim"]
    report = (out / "report.md").read_text()
    assert "Security evaluation (beyond the paper)" in report and security["verdicts"][0]["evidence"] in report
    assert (out / "figures" / "security.png").is_file() and "figures/security.png" in report


def test_secret_model_is_trained_against_k_and_the_private_reference(finished):
    out, _ = finished
    (secret,) = out.glob("models/secret-λ1-*/run.json")
    references = json.loads(secret.read_text())["config"]["references"]
    assert [Path(r).parent.name.split("-")[0] for r in references] == ["reference", "private"]


def test_several_seeds_are_summarised_and_verdicts_read_over_them(tmp_path, monkeypatch):
    config = _tiny(tmp_path / "run")
    config.seeds, config.secret_references, config.defenses = [0, 1], 0, False
    events = []  # every seed's security attacks are started before the first seed's are waited for
    start = pipeline.start_security_evaluation

    def recorded(*args, **kwargs):
        seed = args[3].seed
        events.append(("start", seed))
        wait = start(*args, **kwargs)
        return lambda: events.append(("wait", seed)) or wait()

    monkeypatch.setattr(pipeline, "start_security_evaluation", recorded)
    results = run_study(config, progress=False)
    assert events == [("start", 0), ("start", 1), ("wait", 0), ("wait", 1)]
    assert results["seeds"] == [0, 1] and [s["seed"] for s in results["per_seed"]] == [0, 1]
    folders = {p.parent.name for p in (tmp_path / "run").glob("models/*/model.ckpt")}
    assert len(folders) == 8, "each seed trains its own models"
    accuracy = [next(m["test_accuracy"] for m in s["similarity"] if m["name"] == "ordinary") for s in results["per_seed"]]
    ordinary = next(m for m in results["models"] if m["name"] == "ordinary")
    assert ordinary["test_accuracy"] == pytest.approx(sum(accuracy) / 2)
    if accuracy[0] != accuracy[1]:
        assert (ordinary["test_accuracy_min"], ordinary["test_accuracy_max"]) == (min(accuracy), max(accuracy))
    per_seed_white_box = [
        sum(r["fooling_percent"] for r in s["security"]["rows"] if (r["target"], r["attack"]) == ("ordinary", "white-box"))
        / len(config.security_eps) for s in results["per_seed"]
    ]  # fmt: skip
    verdict = next(v for v in results["security"]["verdicts"] if v["claim"].startswith("white-box"))
    assert verdict["baseline"] == pytest.approx(per_seed_white_box)


def test_rerun_with_nothing_changed_reuses_every_stage(finished, monkeypatch):
    out, results = finished

    def fail(*args, **kwargs):
        raise AssertionError("a cached stage was recomputed")

    monkeypatch.setattr(trainer, "train", fail)  # every model of the study and its surrogates trains through it
    monkeypatch.setattr(pipeline, "transfer_evaluation", fail)
    monkeypatch.setattr(pipeline, "defense_evaluation", fail)
    monkeypatch.setattr(pipeline, "similarity_row", fail)
    again = run_study(_tiny(out), progress=False)
    assert again["models"] == results["models"] and again["transfer"] == results["transfer"]
    assert again["defenses"] == results["defenses"]


def test_the_same_study_with_out_spelled_relative_retrains_nothing(finished, monkeypatch):
    out, results = finished

    def fail(*args, **kwargs):
        raise AssertionError("a finished model was trained again")

    monkeypatch.chdir(out.parent)
    monkeypatch.setattr(trainer, "train", fail)
    again = run_study(_tiny(out.name), progress=False)
    assert again["models"] == results["models"] and again["security"]["rows"] == results["security"]["rows"]


def test_changed_setting_recomputes_only_what_depends_on_it(finished, monkeypatch):
    out, _ = finished
    calls = []
    monkeypatch.setattr(trainer, "train", lambda *a, **k: calls.append("train"))
    original = pipeline.transfer_evaluation
    monkeypatch.setattr(pipeline, "transfer_evaluation", lambda *a, **k: calls.append("transfer") or original(*a, **k))
    config = _tiny(out)
    config.eps = [0.2]
    results = run_study(config, progress=False)
    assert "train" not in calls and calls.count("transfer") == 2
    assert {r["eps"] for r in results["transfer"]} == {0.2}


def test_kill_9_mid_study_resumes_without_redoing_finished_models(tmp_path, monkeypatch):
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import torch
        torch.set_num_threads(1)
        from tests.test_study import _tiny
        from orthocore.study import run_study
        run_study(_tiny({str(out)!r}), progress=False)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parent.parent, env=env)
    deadline = time.time() + 300
    while not list(out.glob("models/reference-*/model.ckpt")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = {p.parent.name for p in out.glob("models/*/model.ckpt")}
    assert any(name.startswith("reference-") for name in finished_before)

    trained = []
    original = trainer.train

    def recording_train(config, resume=False):
        trained.append(Path(config.out).name)
        return original(config, resume=resume)

    monkeypatch.setattr(trainer, "train", recording_train)
    results = run_study(_tiny(out), progress=False)
    assert not set(trained) & finished_before, "a finished model was trained again"
    assert len(results["models"]) == 6


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"data": "/nonexistent/cifar"}, FileNotFoundError, "/nonexistent/cifar"),
        ({"arch": "resnet9000"}, ValueError, "resnet9000"),
        ({"lambdas": [0.0]}, ValueError, "lambdas"),
        ({"eps": [1.5]}, ValueError, "eps"),
        ({"attacks": ["fgsm", "cw"]}, ValueError, "attacks"),
        ({"n_images": 0}, ValueError, "n_images"),
        ({"seeds": [0, 0]}, ValueError, "seeds"),
        ({"seeds": []}, ValueError, "seeds"),
        ({"secret_references": -1}, ValueError, "secret_references"),
    ],
)
def test_bad_input_fails_before_any_training(tmp_path, change, error, match):
    config = _tiny(tmp_path / "run")
    for key, value in change.items():
        setattr(config, key, value)
    with pytest.raises(error, match=match):
        run_study(config, progress=False)
    assert not (tmp_path / "run" / "models").exists()


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="not a directory"):
        run_study(_tiny(blocker / "run"), progress=False)


def test_toml_configuration(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('data = "digits"\nlambdas = [2.0, 5.0]\nmax_epochs = 3\n')
    config = StudyConfig.from_toml(path)
    assert config.lambdas == [2.0, 5.0] and config.max_epochs == 3
    path.write_text('out = "runs/x"\ndata = "cifar10:data/cifar"\n')
    config = StudyConfig.from_toml(path)
    assert (config.out, config.data) == (str(tmp_path / "runs/x"), f"cifar10:{tmp_path / 'data/cifar'}")
    path.write_text('out = "/abs/run"\n')
    assert StudyConfig.from_toml(path).out == "/abs/run"
    path.write_text("lamdbas = [2.0]\n")
    with pytest.raises(ValueError, match="unknown keys"):
        StudyConfig.from_toml(path)
    path.write_text("lambdas = [2.0\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        StudyConfig.from_toml(path)


def test_stage_results_of_another_format_are_recomputed(tmp_path):
    from orthocore.report import RESULTS_FORMAT
    from orthocore.study.cache import StageCache

    cache = StageCache(tmp_path, "seed-0")
    assert cache.put("transfer", "k1", [{"fooling_percent": 5.0}]) == [{"fooling_percent": 5.0}]
    assert cache.get("transfer", "k1") == [{"fooling_percent": 5.0}] and cache.get("transfer", "k2") is None
    stored = tmp_path / "stages" / "seed-0" / "transfer.json"
    old = json.loads(stored.read_text())
    assert old["format"] == RESULTS_FORMAT
    del old["format"]  # written before the format was recorded: fooling_ratio, not fooling_percent
    stored.write_text(json.dumps(old))
    assert cache.get("transfer", "k1") is None


@pytest.mark.parametrize("kind", ["zero-byte", "truncated", "garbage"])
def test_damaged_cached_files_are_moved_aside_and_recomputed_to_the_clean_result(finished, tmp_path, kind):
    """A stage file, a trained model and a surrogate of a finished study damaged at once:
    each is named in a warning, kept as ``.damaged``, and computed again; the results
    equal the clean run's."""
    from tests.test_reliability import damage

    clean, results = finished
    out = tmp_path / "run"
    shutil.copytree(clean, out)
    damaged = [out / "stages" / "seed-0" / "defenses.json", next(out.glob("models/orthogonal-*/model.ckpt")),
               next(out.glob("models/surrogate-*/model.ckpt"))]  # fmt: skip
    for path in damaged:
        damage(path, kind)
    with _one_thread(), pytest.warns(UserWarning) as warned:
        again = run_study(_tiny(out), progress=False)
    messages = [str(w.message) for w in warned if "is damaged" in str(w.message)]
    assert sorted(messages) == sorted(next(m for m in messages if f"'{p}' is damaged" in m) for p in damaged)
    assert all(p.with_name(p.name + ".damaged").exists() for p in damaged)
    assert _measured(again) == _measured(results)
