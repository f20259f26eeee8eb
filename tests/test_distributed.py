"""Training under ``torchrun`` (2 CPU processes, gloo) against the one-process run.

Tolerance of the equivalence: the models have no BatchNorm, so each process computes
exactly the per-sample gradients the one-process run computes for its half of every
batch; what differs is float32 summation order (DDP adds the two halves' mean gradients,
one process sums the whole batch), about 1e-7 relative per step. The runs use plain SGD
(lr 0.01, no momentum) for one epoch (23 steps) of a smooth model (``digits_smooth`` of
``tests/ddp_worker.py``: no ReLU sign or max-pool argmax that a rounding-level change
could flip, which sends two runs down different gradients), where such differences stay
at rounding level: measured 2e-7 of each tensor's largest entry. The test allows 1e-5. Momentum or
Adam amplify them (Adam's normalisation turns a rounding-level change of a near-zero
gradient into a change of order lr): measured 4e-5 with SGD momentum 0.9, lr 0.05, and
up to 5e-6 with Adam over the same epoch, which would need a tolerance too loose to
catch a wrongly weighted share.
"""

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

from orthocore.checkpoint import read_checkpoint
from orthocore.distributed import World
from orthocore.train.shards import epoch_order, epoch_sampler, step_share

WORKER = Path(__file__).with_name("ddp_worker.py")
SGD = ["--optimizer", "sgd", "--lr", "0.01", "--momentum", "0", "--weight-decay", "0", "--batch-size", "64",
       "--no-progress"]  # fmt: skip
SMOOTH = ["--arch", "digits_smooth"]  # see tests/ddp_worker.py
TOLERANCE = 1e-5  # of each tensor's largest entry; see the module's note


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def run_orthocore(args: list[str], processes: int = 1, timeout: float = 300) -> subprocess.CompletedProcess:
    """``orthocore ARGS`` in one process, or under ``torchrun --standalone`` with ``processes``."""
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]  # fmt: skip
    return subprocess.run([*launcher, str(WORKER), *map(str, args)], env=_env(), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def start_torchrun(args: list, processes: int = 2) -> subprocess.Popen:
    """``orthocore ARGS`` under ``torchrun --standalone``, left running (its stdout and
    stderr as one text stream)."""
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             f"--nproc_per_node={processes}", str(WORKER), *map(str, args)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def started_after_a_whole_run(reference: str, tmp_path: Path, name: str) -> tuple[Path, subprocess.Popen]:
    """Trains a four-epoch orthogonal run whole on two processes into ``tmp_path/whole``,
    then starts it again under torchrun into ``tmp_path/name`` and returns, with its folder
    and its launcher, once epoch 1 is saved (epoch 2 is under way: a run to interrupt)."""
    args = ["train", "--reference", reference, "--lambda", "1", "--max-epochs", "4", "--eval-every", "1", *SGD,
            "--batch-size", "16"]  # fmt: skip
    whole = run_orthocore([*args, "--out", tmp_path / "whole"], processes=2)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / name
    launcher = start_torchrun([*args, "--out", out])
    deadline = time.monotonic() + 240
    while not (out / "state.pt").exists():
        assert launcher.poll() is None and time.monotonic() < deadline, "the run ended before it could be interrupted"
        time.sleep(0.05)
    return out, launcher


def weights(run: Path, name: str = "model.ckpt") -> dict[str, torch.Tensor]:
    return read_checkpoint(run / name)["state_dict"]


def largest_difference(a: dict, b: dict) -> float:
    """The largest |a − b| of any tensor, relative to that tensor's largest |a|."""
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1e-12)) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "k"
    done = run_orthocore(["train", "--out", out, "--max-epochs", "1", "--seed", "7", *SGD, *SMOOTH])
    assert done.returncode == 0, done.stderr
    return out / "model.ckpt"


# ---------------------------------------------------------------- the data split


@pytest.mark.parametrize("size,world_size,batch", [(1438, 2, 64), (101, 3, 12), (7, 4, 8), (5, 2, 2), (64, 1, 64)])
def test_the_shares_of_every_step_are_the_one_process_batch(size, world_size, batch):
    """For every step, the samples the processes count (weight > 0) are together exactly
    the one-process run's batch, and their weights sum to world_size (DDP divides by it)."""
    order = epoch_order(3, 2, size)
    expected = [order[i : i + batch] for i in range(0, size, batch)]
    per_process = batch // world_size
    shares = []
    for rank in range(world_size):
        world = World(rank, world_size, rank)
        local = list(epoch_sampler(range(size), 3, 2, world))
        batches = [local[i : i + per_process] for i in range(0, len(local), per_process)]
        shares.append([(b, step_share(t, len(b), per_process, size, world)) for t, b in enumerate(batches)])
    assert all(len(s) == len(expected) for s in shares)  # every process takes every step
    for t, global_batch in enumerate(expected):
        counted = sorted(i for s in shares for i, c in zip(s[t][0], s[t][1].counted.tolist()) if c)
        assert counted == sorted(global_batch)
        assert {s[t][1].global_count for s in shares} == {len(global_batch)}
        total = sum(float(s[t][1].weights(None).ce.sum()) for s in shares)
        assert total == pytest.approx(world_size)


def test_the_penalty_rows_are_dealt_to_the_processes_that_hold_them():
    rows = torch.tensor([0, 3, 4, 9, 10])
    got = []
    for rank in range(2):
        share = step_share(0, 6, 6, 100, World(rank, 2, rank))
        local = share.rows(rows)
        got += [int(r) * 2 + rank for r in local]  # back to positions in the global batch
        assert float(share.weights(rows).penalty.sum()) == pytest.approx(2 * len(local) / len(rows))
    assert sorted(got) == rows.tolist()


# ---------------------------------------------------------------- equivalence


CASES = {
    "orthogonal": ["--lambda", "1", *SMOOTH],
    "ordinary": ["--lambda", "0", *SMOOTH],
    "bias_offset": ["--lambda", "1", "--arch", "digits_bias_offset"],  # pytorch#47562
    "penalty_on_one_sample": ["--lambda", "1", "--penalty-batch", "1", *SMOOTH],  # one process holds no penalty sample
    "disk_cache": ["--lambda", "1", "--cache", "disk", *SMOOTH],  # both processes fill one memory-mapped file
}


@pytest.mark.parametrize("case", CASES)
def test_two_processes_train_the_weights_of_one(tmp_path, reference, case):
    args = ["train", "--reference", reference, "--max-epochs", "1", "--eval-every", "1", *SGD, *CASES[case]]
    single = run_orthocore([*args, "--out", tmp_path / "one"])
    assert single.returncode == 0, single.stderr
    double = run_orthocore([*args, "--out", tmp_path / "two"], processes=2)
    assert double.returncode == 0, double.stderr
    assert largest_difference(weights(tmp_path / "one"), weights(tmp_path / "two")) <= TOLERANCE
    record = json.loads((tmp_path / "two" / "run.json").read_text())
    assert record["processes"] == 2 and record["config"]["batch_size"] == 64  # the global batch
    (one,), (two,) = ([json.loads(line) for line in (tmp_path / r / "metrics.jsonl").read_text().splitlines()]
                      for r in ("one", "two"))  # fmt: skip
    assert two["val_accuracy"] == pytest.approx(one["val_accuracy"], abs=0.3)  # one image of 359 may flip
    assert two["train_ce"] == pytest.approx(one["train_ce"], rel=1e-5)
    # rank 0 alone wrote, and wrote whole files: nothing temporary is left
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


# ---------------------------------------------------------------- evaluations


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A reference, an orthogonal model and an attacker's surrogate that classify most
    digits correctly (Adam, 3 epochs), for the evaluations to have images to attack."""
    root = tmp_path_factory.mktemp("models")
    runs = {"k": ["--seed", "1"], "m": ["--lambda", "1", "--reference", root / "k" / "model.ckpt"], "s": ["--seed", "3"]}
    for name, extra in runs.items():
        done = run_orthocore(["train", "--out", root / name, "--max-epochs", "3", "--eval-every", "3", "--no-progress",
                              *extra])  # fmt: skip
        assert done.returncode == 0, done.stderr
    return {name: root / name / "model.ckpt" for name in runs}


def test_sharded_evaluations_equal_one_process_exactly(tmp_path, trained):
    """attack, defend and security split the sampled images' batches between the two
    processes (odd batch counts: one process takes more) and rank 0 writes the same
    tables, to the last digit: the same images, and each batch's own random draws."""
    k, m, s = (str(trained[name]) for name in ("k", "m", "s"))
    commands = {
        "attack": (["attack", "--source", k, "--target", m, "--target", s, "--attacks", "fgsm,pgd,difgsm",
                    "--eps", "0.05,0.1", "--n-images", "150", "--batch-size", "32"], ".json"),
        "defend": (["defend", "--source", k, "--target", s, "--orthogonal", m, "--attacks", "pgd",
                    "--n-images", "100", "--batch-size", "32"], ".json"),
        "security": (["security", "--target", m, "--baseline", s, "--reference", k, "--surrogate", s,
                      "--adaptive", "0", "--adaptive-without-k", "0", "--n-images", "100", "--white-box-steps", "3",
                      "--restarts", "2", "--square-queries", "12", "--eps", "0.05,0.1"], "/security.json"),
    }  # fmt: skip
    for command, (args, written) in commands.items():
        outputs = []
        for processes in (1, 2):
            out = tmp_path / f"{command}-{processes}"
            done = run_orthocore([*args, "--no-progress", "--out", out], processes=processes)
            assert done.returncode == 0, done.stderr
            assert done.stdout.count("wrote ") == 1  # rank 0 alone prints and writes
            result = json.loads(Path(f"{out}{written}").read_text())
            result.pop("metadata", None)  # its versions record the launch, not the numbers
            outputs.append((result, done.stdout.split("wrote ")[0]))
        assert outputs[0] == outputs[1], command


def test_the_study_trains_and_evaluates_under_torchrun(tmp_path):
    config = tmp_path / "study.toml"
    config.write_text("\n".join([
        'lambdas = [1.0]', "max_epochs = 1", "eval_every = 1", "batch_size = 64", "n_images = 40", "seeds = [0]",
        "gradcam_images = 2", "white_box_steps = 2", "restarts = 1", "square_queries = 6", "surrogates = 1",
        "adaptive = 1", "secret_references = 0", "eps = [0.05, 0.1]", "security_eps = [0.05, 0.1]",
    ]))  # fmt: skip
    done = run_orthocore(["run", "--config", config, "--out", tmp_path / "study", "--no-progress"], processes=2)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("report: ") == 1
    results = json.loads((tmp_path / "study" / "results.json").read_text())
    assert results["transfer"] and results["defenses"] and results["security"]["verdicts"]
    records = [json.loads(p.read_text()) for p in (tmp_path / "study").rglob("run.json")]
    assert len(records) >= 6 and all(r["processes"] == 2 for r in records)  # the models and the surrogates
    assert not [p for p in (tmp_path / "study").rglob(".*")]  # nothing half-written


# ---------------------------------------------------------------- faults


def _worker_pids(launcher: subprocess.Popen) -> dict[int, int]:
    """rank → pid of the processes torchrun started."""
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    ranks = {}
    for pid in map(int, children):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        rank = [int(v.split(b"=", 1)[1]) for v in environ if v.startswith(b"RANK=")]
        if rank:
            ranks[rank[0]] = pid
    return ranks


def test_a_killed_process_ends_the_job_and_the_run_resumes_on_any_world_size(tmp_path, reference):
    out, launcher = started_after_a_whole_run(reference, tmp_path, "killed")
    time.sleep(0.3)
    os.kill(_worker_pids(launcher)[1], signal.SIGKILL)
    output, _ = launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    assert "Signal 9 (SIGKILL)" in output  # torchrun names the process and the signal
    assert not (out / "model.ckpt").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no half-written file
    saved = torch.load(out / "state.pt", weights_only=True)
    assert 1 <= saved["epoch"] < 4
    logged = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert logged[: saved["epoch"]] == list(range(1, saved["epoch"] + 1)) and len(logged) <= saved["epoch"] + 1

    elsewhere = tmp_path / "killed-resumed-alone"
    shutil.copytree(out, elsewhere)
    resumed = run_orthocore(["train", "--resume", "--out", out, "--no-progress"], processes=2)
    assert resumed.returncode == 0, resumed.stderr
    assert largest_difference(weights(tmp_path / "whole"), weights(out)) == 0.0  # the same computation, replayed
    # on one process it finishes too, and (no BatchNorm) near the same weights
    alone = run_orthocore(["train", "--resume", "--out", elsewhere, "--no-progress"])
    assert alone.returncode == 0, alone.stderr
    assert "trained 4 epochs" in alone.stdout
    assert largest_difference(weights(tmp_path / "whole"), weights(elsewhere)) <= 1e-4


# ---------------------------------------------------------------- bad set-ups


def test_a_global_batch_that_does_not_split_is_refused_before_any_work(tmp_path):
    done = run_orthocore(["train", "--out", tmp_path / "run", "--batch-size", "65", "--no-progress"], processes=2)
    assert done.returncode != 0
    assert "batch_size: the global batch 65 does not split evenly among the 2 processes" in done.stderr
    assert not [line for line in done.stderr.splitlines() if line.strip().startswith("File") and "/orthocore/" in line]
    assert not (tmp_path / "run").exists()


def test_more_processes_than_training_samples_is_refused(tmp_path):
    from PIL import Image

    for label in ("a", "b"):  # two images: a training split of 2
        (tmp_path / "data" / label).mkdir(parents=True)
        Image.new("RGB", (32, 32), (40, 80, 120)).save(tmp_path / "data" / label / "x.png")
    done = run_orthocore(["train", "--out", tmp_path / "run", "--data", f"folder:{tmp_path / 'data'}", "--arch",
                          "imagenet_resnet34", "--batch-size", "3", "--no-progress"], processes=3)  # fmt: skip
    assert done.returncode != 0
    assert "has 2 samples, fewer than the 3 processes torchrun started" in done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_under_torchrun_without_a_gpu_is_refused(tmp_path):
    done = run_orthocore(["train", "--out", tmp_path / "run", "--device", "cuda", "--no-progress"], processes=2)
    assert done.returncode != 0
    assert "device: 'cuda' requested but no CUDA device is available" in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_command_that_runs_in_one_process_says_so_under_torchrun(tmp_path):
    """``export``, ``similarity``, ``report`` and ``backends`` are one-process commands."""
    done = run_orthocore(["export", tmp_path / "a.ckpt", tmp_path / "a.safetensors"], processes=2)
    assert done.returncode != 0
    assert "torchrun: this command runs in one process; start it without torchrun" in done.stderr
