"""Workers: jobs side by side in processes, or at once in this process with one worker;
the schedule of training runs that need each other's checkpoints."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from orthocore import distributed, workers
from orthocore.train import TrainConfig
from orthocore.train.schedule import Planned, train_all
from orthocore.workers import Workers, worker_count


def _pid_and_threads(_item=None) -> tuple[int, int]:
    return os.getpid(), torch.get_num_threads()


def _fail(message: str) -> None:
    raise ValueError(message)


def test_one_worker_runs_each_job_at_once_in_this_process():
    order = []
    with Workers(1) as pool:
        first = pool.submit(order.append, "a")
        assert order == ["a"] and first.done()
        failed = pool.submit(_fail, "bad job")
        assert pool.map(abs, [-2, 3]) == [2, 3] and pool.submit(_pid_and_threads).result()[0] == os.getpid()
    with pytest.raises(ValueError, match="bad job"):  # raised where the result is asked for, as a worker's is
        failed.result()


def test_several_workers_run_jobs_in_their_own_single_threaded_processes():
    with Workers(2) as pool:
        results = pool.map(_pid_and_threads, range(6))
        with pytest.raises(ValueError, match="in a worker"):
            pool.submit(_fail, "in a worker").result()
    pids = {pid for pid, _ in results}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {threads for _, threads in results} == {max(1, workers.available_cores() // 2)}


def test_worker_count(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert worker_count(0, cpu) == workers.available_cores() and worker_count(3, cpu) == 3
    assert worker_count(0, gpu) == 1 and worker_count(2, gpu) == 2
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError, match="workers"):
            worker_count(bad, cpu)
    monkeypatch.setattr(distributed, "world", lambda: distributed.World(rank=0, size=2))
    assert worker_count(0, cpu) == 1 and worker_count(1, cpu) == 1
    with pytest.raises(ValueError, match="torchrun"):
        worker_count(2, cpu)


def test_a_worker_exits_when_its_parent_is_killed(tmp_path):
    pid_file = tmp_path / "worker.pid"
    script = textwrap.dedent(f"""
        import os, time
        from orthocore.workers import Workers

        def job():
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(120)

        if __name__ == "__main__":
            pool = Workers(2)
            pool.submit(job)
            time.sleep(120)
    """)
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], cwd=Path(__file__).parent.parent)
    deadline = time.time() + 120
    while not pid_file.is_file() and time.time() < deadline:
        time.sleep(0.1)
    worker = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while Path(f"/proc/{worker}").exists() and time.time() < deadline:
        time.sleep(0.1)
    status = Path(f"/proc/{worker}/status")
    assert not status.exists() or "zombie" in status.read_text(), "the orphaned worker kept running"


def _config(tmp_path, name: str, references: list[str], seed: int) -> TrainConfig:
    return TrainConfig(out=str(tmp_path / name), data="digits", arch="digits_cnn", max_epochs=1, eval_every=1,
                       batch_size=128, lam=1.0 if references else 0.0, references=references, seed=seed,
                       progress=False, device="cpu")  # fmt: skip


@pytest.mark.parametrize("count", [1, 2])
def test_train_all_trains_each_run_after_the_runs_it_needs(tmp_path, count):
    seen = {}

    def planned(key, needs, seed):
        def config(paths):
            seen[key] = paths
            return _config(tmp_path, key, paths, seed)

        return Planned(key, needs, config)

    plans = [planned("orthogonal", ("a", "b"), 3), planned("a", (), 1), planned("b", (), 2)]
    finished = []
    with Workers(count) as pool:
        trained = train_all(plans, pool, on_done=lambda key, run: finished.append(key))
    assert list(trained) == ["orthogonal", "a", "b"] and finished[-1] == "orthogonal"
    assert seen["orthogonal"] == [str(tmp_path / "a" / "model.ckpt"), str(tmp_path / "b" / "model.ckpt")]
    assert all(Path(run.checkpoint).is_file() and run.seconds > 0 for run in trained.values())
    with Workers(count) as pool:  # finished runs are reused
        again = train_all(plans, pool)
    assert all(run.seconds is None for run in again.values())


def test_train_all_refuses_bad_schedules(tmp_path):
    never = lambda paths: pytest.fail("no run may start")  # noqa: E731
    with Workers(1) as pool:
        with pytest.raises(ValueError, match="'x' needs \\['missing'\\]"):
            train_all([Planned("x", ("missing",), never)], pool)
        with pytest.raises(ValueError, match="key of its own"):
            train_all([Planned("x", (), never), Planned("x", (), never)], pool)
        with pytest.raises(ValueError, match="need each other"):
            train_all([Planned("x", ("y",), never), Planned("y", ("x",), never)], pool)
        given = train_all([], pool, given={"K": "k.ckpt"})
    assert given == {}
