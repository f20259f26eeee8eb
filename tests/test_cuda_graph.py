"""``cuda_graph``: the whole training step captured as one CUDA graph. Checked before any
work, absent from the keys of runs recorded without it; on a GPU the captured step equals
the eager one, and an epoch's partial last batch takes the eager step."""

import copy
import json

import pytest
import torch

from orthocore import cli, models
from orthocore._io import seal_path
from orthocore.checkpoint import save_checkpoint
from orthocore.data import load_digits
from orthocore.distributed import World
from orthocore.gradients import reference_gradients
from orthocore.train import TrainConfig, orthogonal_loss, train
from orthocore.train.graphs import CapturedStep
from orthocore.train.state import load_state
from tests.test_train import config

pytestmark = pytest.mark.usefixtures("one_thread")
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An untrained digits CNN saved as a reference."""
    torch.manual_seed(11)
    path = tmp_path_factory.mktemp("reference") / "reference.ckpt"
    save_checkpoint(path, models.create("digits_cnn"), arch="digits_cnn", num_classes=10)
    return str(path)


# ------------------------------------------------------------------------------ any machine
def test_cuda_graph_on_the_cpu_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"cuda_graph: .*needs a CUDA device, got cpu"):
        train(config(tmp_path, "run", device="cpu", cuda_graph=True))
    assert not (tmp_path / "run").exists()


def test_cuda_graph_under_torchrun_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("orthocore.distributed.world", lambda: World(rank=0, size=2, local_rank=0))
    with pytest.raises(ValueError, match=r"cuda_graph: .*under torchrun leave cuda_graph off"):
        config(tmp_path, "run", device="cpu", cuda_graph=True).validate()


def test_cuda_graph_must_be_a_bool(tmp_path):
    with pytest.raises(ValueError, match="cuda_graph must be true or false"):
        config(tmp_path, "run", device="cpu", cuda_graph="yes").validate()


def test_result_keys_of_runs_recorded_before_cuda_graph_are_unchanged(tmp_path):
    # expected = TrainConfig(out=..., **settings).result_key() before the cuda_graph field existed
    recorded = [({}, "4758f8250e17cb84"),
                ({"lam": 0.0, "batch_size": 64, "seed": 5, "optimizer": "sgd", "autocast": "bf16"}, "136cc02cd3d596f7")]
    for settings, key in recorded:
        assert TrainConfig(out=str(tmp_path / "a"), **settings).result_key() == key
        assert TrainConfig(out=str(tmp_path / "a"), cuda_graph=True, **settings).result_key() != key


def test_cuda_graph_is_a_train_flag():
    parser = cli.build_parser()
    assert parser.parse_args(["train", "--cuda-graph"]).cuda_graph is True
    assert parser.parse_args(["train"]).cuda_graph is False


def test_a_run_recorded_before_cuda_graph_existed_resumes(tmp_path):
    run = config(tmp_path, "run", max_epochs=1, eval_every=1)
    train(run)
    state_path = tmp_path / "run" / "state.pt"
    state = load_state(state_path)
    del state["config"]["cuda_graph"]  # as written before the field existed,
    del state["reference_digests"]  # before states recorded their references' digests,
    torch.save(state, state_path)
    seal_path(state_path).unlink()  # and before files were sealed
    assert train(run, resume=True).epochs == 1


# ---------------------------------------------------------------------------------- GPU only
def _step_of(model, optimizer, lam):
    """The step :class:`CapturedStep` records: forward, input gradient, penalty, backward, update."""

    def step(x, y, reference_grads, rows):
        result = orthogonal_loss(model, x, y, reference_grads, lam, "abs", rows)
        result.loss.backward()
        optimizer.step()
        return result.loss.detach(), result.ce, result.delta

    return step


def _optimizer(name, model):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    return torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)


@cuda_only
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize(
    ("lam", "sub_batch"),
    [(0.0, False),  # ordinary training
     (1.0, False),  # the orthogonal step
     (1.0, True)],  # the penalty on 4 of the 8 rows
)  # fmt: skip
def test_captured_step_equals_the_eager_step(optimizer, lam, sub_batch):
    """ResNet-20 (BatchNorm: running statistics are buffers the graph updates), 8 steps:
    3 warm-up steps, the capture and its replay, then 4 replays."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    reference = models.create("resnet20").to(device).eval().requires_grad_(False)
    eager_model = models.create("resnet20").to(device).train()
    graph_model = copy.deepcopy(eager_model)
    eager_optimizer, graph_optimizer = _optimizer(optimizer, eager_model), _optimizer(optimizer, graph_model)
    eager_step = _step_of(eager_model, eager_optimizer, lam)
    captured = CapturedStep(_step_of(graph_model, graph_optimizer, lam), graph_optimizer, device)
    for _ in range(8):
        x, y = torch.rand(8, 3, 32, 32, device=device), torch.randint(0, 10, (8,), device=device)
        rows = torch.randperm(8, device=device)[:4].sort().values if sub_batch else None
        picked = slice(None) if rows is None else rows
        reference_grads = reference_gradients(reference, x[picked], y[picked]).unsqueeze(0) if lam else None
        eager_optimizer.zero_grad(set_to_none=True)
        expected = eager_step(x, y, reference_grads, rows)
        got = captured(x=x, y=y, reference_grads=reference_grads, rows=rows)
        for a, b in zip(got, expected):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert captured.graph is not None
    for (name, a), b in zip(graph_model.state_dict().items(), eager_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    with pytest.raises(ValueError, match=r"x: the captured step takes \(8, 3, 32, 32\)"):
        captured(x=x[:5], y=y[:5], reference_grads=reference_grads, rows=rows)


@cuda_only
@pytest.mark.parametrize(
    "overrides",
    [{"lam": 0.0, "optimizer": "adam"},
     {"lam": 0.0, "optimizer": "sgd", "lr": 0.05},
     {"lam": 1.0, "optimizer": "adam"},
     {"lam": 1.0, "optimizer": "sgd", "lr": 0.05},
     {"lam": 1.0, "optimizer": "adam", "penalty_batch": 16}],
)  # fmt: skip
def test_a_captured_run_trains_like_the_eager_run(tmp_path, reference, monkeypatch, overrides):
    """Two epochs of the digits with batch 64, whose last batch of each epoch is partial
    (the eager fallback): the captured run's weights and logged losses equal the eager
    run's to float rounding (Adam is capturable in one and not the other)."""
    batches, partial = divmod(len(load_digits("train")), 64)
    assert partial  # the eager fallback is exercised
    references = [reference] if overrides["lam"] else []
    common = dict(device="cuda", references=references, **overrides)
    eager = train(config(tmp_path, "eager", **common))
    made = []

    class Counted(CapturedStep):  # remembers itself, to see which batches it took
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr("orthocore.train.trainer.CapturedStep", Counted)
    captured = train(config(tmp_path, "captured", cuda_graph=True, **common))
    (step,) = made
    assert step.graph is not None and step.steps_taken == 2 * batches  # every full batch, no partial one
    for (name, a), b in zip(captured.model.state_dict().items(), eager.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)
    lines = {name: json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[-1])
             for name in ("eager", "captured")}  # fmt: skip
    for key in ("train_ce", "train_abs_delta") if overrides["lam"] else ("train_ce",):
        assert lines["captured"][key] == pytest.approx(lines["eager"][key], rel=1e-3)
    assert json.loads((tmp_path / "captured" / "run.json").read_text())["config"]["cuda_graph"] is True


@cuda_only
def test_a_captured_bf16_run_trains(tmp_path, reference):
    """bf16 autocast inside the graph (without autocast's cast cache, which a graph cannot hold)."""
    result = train(config(tmp_path, "bf16", device="cuda", lam=1.0, references=[reference], max_epochs=1,
                          eval_every=1, autocast="bf16", cuda_graph=True))  # fmt: skip
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    line = json.loads((tmp_path / "bf16" / "metrics.jsonl").read_text())
    assert 0 <= line["train_abs_delta"] <= 1
