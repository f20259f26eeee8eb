"""Runs that never overwrite each other and stop cleanly: the output lock every writing
command takes (:mod:`orthocore.locks`), and SIGTERM (:mod:`orthocore.interrupts`) — a
command stops after its current step, saves what a resume needs, says how to resume and
exits 143, and the resumed run equals one never interrupted, bit for bit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from orthocore import cli, interrupts, models
from orthocore.checkpoint import read_checkpoint
from orthocore.data import load_digits
from orthocore.evaluate import batches
from orthocore.gradients import ReferenceGradientCache
from orthocore.locks import LOCK_NAME, lock_file, output_lock
from orthocore.train import TrainConfig, trainer
from tests.test_distributed import (SGD, WORKER, _env, _worker_pids, run_orthocore, start_torchrun,
                                   started_after_a_whole_run)  # fmt: skip

ROOT = Path(__file__).parent.parent
HOLD = """
import sys
from orthocore.locks import output_lock
with output_lock(sys.argv[1], folder=sys.argv[2] == "folder"):
    print("held", flush=True)
    sys.stdin.read()
"""


def _hold(output: Path, folder: bool = True) -> subprocess.Popen:
    """Another process holding the lock on ``output`` until its stdin closes."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(output), "folder" if folder else "file"], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    return holder


def _release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the run ended before {path.name} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A digits model trained for one epoch, for the commands that read checkpoints."""
    out = tmp_path_factory.mktemp("model") / "k"
    assert cli.main(["train", "--out", str(out), "--max-epochs", "1", "--seed", "7", *SGD]) == 0
    return out / "model.ckpt"


# ---------------------------------------------------------------- the lock


def _commands(model: Path, tmp_path: Path) -> dict[str, tuple[list[str], Path, bool]]:
    """command → (its arguments, its output, whether the output is a folder)."""
    config = tmp_path / "study.toml"
    config.write_text("lambdas = [1.0]\nmax_epochs = 1\n")
    k = str(model)
    out = tmp_path / "out"
    return {
        "train": (["train", "--out", str(out), "--max-epochs", "1"], out, True),
        "run": (["run", "--config", str(config), "--out", str(out)], out, True),
        "demo": (["demo", "--out", str(out)], out, True),
        "attack": (["attack", "--source", k, "--target", k, "--out", str(out)], out, False),
        "defend": (["defend", "--source", k, "--target", k, "--out", str(out)], out, False),
        "security": (["security", "--target", k, "--baseline", k, "--reference", k, "--out", str(out)], out, True),
        "export": (["export", k, str(tmp_path / "out.safetensors")], tmp_path / "out.safetensors", False),
    }


@pytest.mark.parametrize("command", ["train", "run", "demo", "attack", "defend", "security", "export"])
def test_a_second_writer_is_refused_in_one_line_and_changes_nothing(tmp_path, model, command, capsys):
    args, output, folder = _commands(model, tmp_path)[command]
    if folder:
        output.mkdir()
        (output / "earlier.txt").write_text("a result of the holder")
    holder = _hold(output, folder)
    before = _files(tmp_path)
    try:
        assert cli.main([*args, "--no-progress"] if command != "export" else args) == 2
    finally:
        after = _files(tmp_path)
        _release(holder)
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert f"{str(output)!r} is in use by process {holder.pid} on " in error
    assert after == before  # nothing written, nothing removed
    assert not lock_file(output, folder=folder).exists()  # the holder released and removed it


def test_two_concurrent_trains_the_second_is_refused_and_the_first_model_is_whole(tmp_path):
    out = tmp_path / "same"
    # 150 epochs, one evaluation: several seconds of holding the folder, longer than the
    # second process takes to start and ask (4 epochs were over before it asked)
    first = subprocess.Popen([sys.executable, str(WORKER), "train", "--out", str(out), "--max-epochs", "150",
                              "--eval-every", "150", "--seed", "1", "--no-progress"], env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(out / LOCK_NAME, first)
    second = run_orthocore(["train", "--out", out, "--max-epochs", "1", "--seed", "2", "--no-progress"])
    assert second.returncode == 2
    assert f"is in use by process {first.pid} on " in second.stderr and str(out) in second.stderr
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert json.loads((out / "run.json").read_text())["config"]["seed"] == 1
    assert read_checkpoint(out / "model.ckpt")["extra"]["config"]["seed"] == 1  # sound, and the first run's
    assert not (out / LOCK_NAME).exists()


def test_two_concurrent_studies_the_second_is_refused_and_the_first_stops_on_sigterm(tmp_path):
    config = tmp_path / "study.toml"
    config.write_text("lambdas = [1.0]\nmax_epochs = 5\nseeds = [0]\nworkers = 1\n")
    out = tmp_path / "study"
    first = subprocess.Popen([sys.executable, str(WORKER), "run", "--config", str(config), "--out", str(out),
                              "--no-progress"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    _wait_for(out / LOCK_NAME, first)
    second = run_orthocore(["demo", "--out", out, "--no-progress"])
    assert second.returncode == 2
    assert f"{str(out)!r} is in use by process {first.pid} on " in second.stderr
    _wait_for(out / "models", first)  # training has begun
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 143, stderr
    (line,) = [line for line in stderr.splitlines() if "SIGTERM" in line]
    assert line.startswith("orthocore run: stopped by SIGTERM") and "run the same command again" in line
    assert not list(out.rglob("*.lock")) and not list(out.rglob(LOCK_NAME))


def test_the_lock_of_a_killed_process_is_taken_over_with_a_notice(tmp_path, capsys):
    out = tmp_path / "run"
    holder = _hold(out)
    holder.kill()
    holder.wait()
    assert (out / LOCK_NAME).exists()  # left behind, but no longer locked
    assert cli.main(["train", "--out", str(out), "--max-epochs", "1", *SGD]) == 0
    error = capsys.readouterr().err
    assert f"took over the lock on {str(out)!r} left by process {holder.pid} on " in error
    assert read_checkpoint(out / "model.ckpt") and not (out / LOCK_NAME).exists()


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with output_lock(tmp_path / "a"), pytest.raises(OSError, match=f"in use by process {os.getpid()}"):
        with output_lock(tmp_path / "a"):
            pass
    assert not (tmp_path / "a").exists()  # the lock created the folder, and nothing was written into it


def test_under_torchrun_rank_0_holds_the_lock_for_the_job(tmp_path, model):
    out = tmp_path / "run"
    args = ["train", "--reference", model, "--lambda", "1", "--max-epochs", "6", *SGD, "--batch-size", "16"]
    job = start_torchrun([*args, "--out", out])
    _wait_for(out / LOCK_NAME, job)
    holder_pid = json.loads((out / LOCK_NAME).read_text())["pid"]
    assert holder_pid == _worker_pids(job)[0]
    second = run_orthocore(["train", "--out", out, "--max-epochs", "1", "--no-progress"])
    assert second.returncode == 2 and f"in use by process {holder_pid} on " in second.stderr
    output, _ = job.communicate(timeout=300)
    assert job.returncode == 0, output
    assert not (out / LOCK_NAME).exists()

    held = _hold(tmp_path / "held")  # a job refused: every rank stops with the one message
    try:
        refused = run_orthocore([*args, "--out", tmp_path / "held"], processes=2)
    finally:
        _release(held)
    assert refused.returncode != 0
    assert refused.stderr.count(f"is in use by process {held.pid} on ") == 2  # one line per rank
    assert not (tmp_path / "held").exists()


# ---------------------------------------------------------------- SIGTERM


def _sigterm_at_step(monkeypatch, step: int) -> None:
    """SIGTERM to this process during training step ``step`` (1-based, over the run)."""
    original, calls = trainer._Run._train_step, []

    def step_then_signal(self, *args, **kwargs):
        calls.append(None)
        if len(calls) == step:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(trainer._Run, "_train_step", step_then_signal)


@pytest.mark.parametrize("step", [30, 46], ids=["mid-epoch", "last-step-of-an-epoch"])  # 23 steps an epoch
def test_sigterm_saves_the_state_and_the_resumed_run_is_bit_exact(tmp_path, model, monkeypatch, capsys, step):
    args = ["train", "--reference", str(model), "--lambda", "1", "--max-epochs", "3", "--eval-every", "1",
            "--batch-size", "64", "--no-progress"]  # fmt: skip
    assert cli.main([*args, "--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "stopped"
    handler = signal.getsignal(signal.SIGTERM)
    with monkeypatch.context() as patch:
        _sigterm_at_step(patch, step)
        assert cli.main([*args, "--out", str(out)]) == 143
    error = capsys.readouterr().err.strip().splitlines()[-1]
    epoch, after = step // 23 + 1 if step % 23 else step // 23, (step - 1) % 23 + 1
    assert error == (f"orthocore train: stopped by SIGTERM in epoch {epoch} after step {after} of 23; the training "
                     f"state is saved in '{out}/state.pt'; resume with: orthocore train --resume --out {out}")
    assert not (out / "model.ckpt").exists() and not (out / LOCK_NAME).exists()
    assert signal.getsignal(signal.SIGTERM) is handler  # the command's own handler is gone again
    assert cli.main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0
    whole, resumed = (read_checkpoint(p / "model.ckpt")["state_dict"] for p in (tmp_path / "whole", out))
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)
    whole_log, resumed_log = ([{k: v for k, v in json.loads(line).items() if k != "images_per_s"}
                               for line in (p / "metrics.jsonl").read_text().splitlines()]
                              for p in (tmp_path / "whole", out))  # fmt: skip
    assert resumed_log == whole_log  # the interrupted epoch's sums were saved with its state


def test_sigterm_to_torchrun_stops_every_rank_and_the_resume_is_bit_exact(tmp_path, model):
    out, job = started_after_a_whole_run(model, tmp_path, "stopped")
    time.sleep(0.5)
    job.send_signal(signal.SIGTERM)  # what a scheduler sends to the job's first process
    output, _ = job.communicate(timeout=120)
    assert job.returncode != 0
    stopped = [line for line in output.splitlines() if line.startswith("orthocore train: stopped by SIGTERM")]
    assert len(stopped) == 1 and f"resume with: orthocore train --resume --out {out}" in stopped[0]  # rank 0 says it
    assert "terminate called" not in output
    assert not (out / "model.ckpt").exists() and (out / "state.pt").exists()
    resumed = run_orthocore(["train", "--resume", "--out", out, "--no-progress"], processes=2)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (read_checkpoint(p / "model.ckpt")["state_dict"] for p in (tmp_path / "whole", out))
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_sigterm_stops_an_attack_between_batches_and_writes_nothing(tmp_path, model, monkeypatch, capsys):
    original = batches.batch_seed

    def seed_then_signal(seed, batch):
        if batch == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(seed, batch)

    monkeypatch.setattr(batches, "batch_seed", seed_then_signal)
    out = tmp_path / "transfer"
    code = cli.main(["attack", "--source", str(model), "--target", str(model), "--attacks", "fgsm", "--n-images", "96",
                     "--batch-size", "16", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 143
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("orthocore attack: stopped by SIGTERM after 2 of ") and "run the same command again" in error
    assert not list(tmp_path.glob("*transfer*"))  # no table, no lock file


# ---------------------------------------------------------------- damaged caches


def damage(path: Path, kind: str) -> None:
    """``path`` emptied, cut in half, or overwritten with as many bytes of garbage."""
    data = path.read_bytes()
    if kind == "zero-byte":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(bytes((b * 7 + 13) % 256 for b in data))


DAMAGES = ["zero-byte", "truncated", "garbage"]


def _train_config(out: Path, model: Path) -> TrainConfig:
    return TrainConfig(out=str(out), references=[str(model)], lam=1.0, max_epochs=2, eval_every=1,
                               batch_size=64, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, model) -> Path:
    out = tmp_path_factory.mktemp("clean") / "run"
    trainer.train(_train_config(out, model))
    return out


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = (read_checkpoint(p / "model.ckpt")["state_dict"] for p in (a, b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[name], wb[name]) for name in wa)


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_model_of_a_cached_run_is_moved_aside_and_trained_again(tmp_path, model, clean_run, kind):
    out = tmp_path / "run"
    shutil.copytree(clean_run, out)
    damage(out / "model.ckpt", kind)
    with pytest.warns(UserWarning, match=rf"'{out}/model.ckpt' is damaged \(.*\); moved to model.ckpt.damaged"):
        assert trainer.ensure_trained(_train_config(out, model))
    assert (out / "model.ckpt.damaged").read_bytes() != (out / "model.ckpt").read_bytes()  # kept, not deleted
    assert _same_weights(clean_run, out)
    assert not trainer.ensure_trained(_train_config(out, model))  # now sound: reused


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_training_state_is_moved_aside_and_the_run_starts_afresh(tmp_path, model, clean_run, kind,
                                                                           monkeypatch):  # fmt: skip
    out = tmp_path / "run"
    with monkeypatch.context() as patch, interrupts.stop_on_sigterm(), pytest.raises(interrupts.Interrupted):
        _sigterm_at_step(patch, 30)
        trainer.train(_train_config(out, model))
    damage(out / "state.pt", kind)
    with pytest.warns(UserWarning, match=rf"'{out}/state.pt' is damaged \(.*\); moved to state.pt.damaged"):
        assert trainer.ensure_trained(_train_config(out, model))
    assert _same_weights(clean_run, out)


def test_a_damaged_training_state_the_user_resumes_is_an_error_naming_it(tmp_path, model, monkeypatch, capsys):
    out = tmp_path / "run"
    with monkeypatch.context() as patch, interrupts.stop_on_sigterm(), pytest.raises(interrupts.Interrupted):
        _sigterm_at_step(patch, 30)
        trainer.train(_train_config(out, model))
    damage(out / "state.pt", "truncated")
    assert cli.main(["train", "--resume", "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"{out}/state.pt" in error
    assert (out / "state.pt").exists()  # the user's file: named, not moved


@pytest.mark.parametrize("kind", DAMAGES)
@pytest.mark.parametrize("which", ["grads.npy", "grads.npy.json"])
def test_a_damaged_reference_gradient_cache_is_moved_aside_and_rebuilt(tmp_path, kind, which):
    data = load_digits("val")
    references = [models.create("digits_cnn").eval()]
    path = tmp_path / "grads.npy"
    clean = ReferenceGradientCache(references, data, path=path, key="k", batch_size=100)[torch.arange(len(data))]
    damage(tmp_path / which, kind)
    with pytest.warns(UserWarning, match=rf"'{tmp_path / which}' is damaged"):
        rebuilt = ReferenceGradientCache(references, data, path=path, key="k", batch_size=100)
    assert torch.equal(rebuilt[torch.arange(len(data))], clean)
    assert (tmp_path / f"{which}.damaged").exists()
