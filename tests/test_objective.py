"""The orthogonal objective: the torch.func double-backprop path against
torch.autograd.grad(create_graph=True) and finite differences, in float64."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from orthocore.gradients import input_gradients
from orthocore.ops import normalized_dot_reference
from orthocore.train import PENALTIES, orthogonal_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model() -> nn.Module:
    """Smooth (tanh) so that finite differences see no kinks; BatchNorm in train mode."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 5 * 5, 4)
    ).double()


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(6, 2, 5, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 4, (6,), generator=generator)
    references = torch.randn(2, 6, 2, 5, 5, generator=generator, dtype=torch.float64)  # (R, B, C, H, W)
    return x, y, references


def autograd_loss(model, x, y, references, lam, penalty):
    """The same objective written with torch.autograd.grad(create_graph=True)."""
    x = x.clone().requires_grad_()
    logits = model(x)
    (grads,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x, create_graph=True)
    delta = torch.stack([normalized_dot_reference(ref, grads) for ref in references])
    return F.cross_entropy(logits, y) + lam * PENALTIES[penalty](delta).mean()


@pytest.mark.parametrize("penalty", list(PENALTIES))
def test_torch_func_parameter_gradient_equals_autograd_create_graph(batch, penalty):
    x, y, references = batch
    model = tiny_model().train()
    loss = orthogonal_loss(model, x, y, references, 2.5, penalty).loss
    expected = autograd_loss(model, x, y, references, 2.5, penalty)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected_grads = torch.autograd.grad(expected, list(model.parameters()))
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("penalty", list(PENALTIES))
def test_parameter_gradient_matches_finite_differences(batch, penalty):
    x, y, references = batch
    model = tiny_model().train()
    parameters = list(model.parameters())
    grads = torch.autograd.grad(orthogonal_loss(model, x, y, references, 2.5, penalty).loss, parameters)
    generator = torch.Generator().manual_seed(2)
    eps = 1e-6
    for _ in range(3):
        direction = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in parameters]
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                for p, d in zip(parameters, direction):
                    p.add_(sign * eps * d)
                values.append(orthogonal_loss(model, x, y, references, 2.5, penalty).loss.item())
                for p, d in zip(parameters, direction):
                    p.sub_(sign * eps * d)
        numeric = (values[0] - values[1]) / (2 * eps)
        analytic = sum((g * d).sum() for g, d in zip(grads, direction)).item()
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_second_order_term_matters(batch):
    """Dropping the graph of the input gradient changes the parameter gradient: the
    trainer really differentiates through it."""
    x, y, references = batch
    model = tiny_model().train()
    loss = orthogonal_loss(model, x, y, references, 2.5, "abs")
    full = torch.autograd.grad(loss.loss, list(model.parameters()))
    ce_only = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
    assert max((a - b).abs().max().item() for a, b in zip(full, ce_only)) > 1e-3


def test_penalty_value_is_lambda_times_mean_penalty_over_references(batch):
    x, y, references = batch
    model = tiny_model().eval()
    grads, _ = input_gradients(model, x, y)
    for penalty, fn in (("abs", torch.abs), ("square", torch.square), ("signed", lambda d: d)):
        result = orthogonal_loss(model, x, y, references, 3.0, penalty)
        delta = torch.stack([normalized_dot_reference(ref, grads) for ref in references])  # (R, B)
        torch.testing.assert_close(result.delta, delta)
        torch.testing.assert_close(result.loss - result.ce, 3.0 * fn(delta).mean())


def test_lambda_zero_is_plain_cross_entropy(batch):
    x, y, _ = batch
    model = tiny_model().eval()
    result = orthogonal_loss(model, x, y, None, 0.0)
    assert result.delta is None
    assert torch.equal(result.loss, F.cross_entropy(model(x), y))


def test_positive_lambda_without_references_is_an_error(batch):
    x, y, _ = batch
    with pytest.raises(ValueError, match="reference_grads"):
        orthogonal_loss(tiny_model(), x, y, None, 1.0)


def no_batch_norm_model() -> nn.Module:
    """Without BatchNorm every sample's input gradient is its own, so a sub-batch's
    gradients are rows of the whole batch's."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 5 * 5, 4)).double()


def test_sub_batch_penalty_is_the_full_cross_entropy_plus_the_rows_penalty(batch):
    x, y, references = batch
    model = no_batch_norm_model()
    rows = torch.tensor([1, 4])
    result = orthogonal_loss(model, x, y, references[:, rows], 2.5, "abs", rows)
    x_graph = x.clone().requires_grad_()
    logits = model(x_graph)
    (grads,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x_graph, create_graph=True)
    delta = torch.stack([normalized_dot_reference(ref, grads[rows]) for ref in references[:, rows]])
    expected = F.cross_entropy(logits, y) + 2.5 * delta.abs().mean()
    torch.testing.assert_close(result.loss, expected, rtol=1e-12, atol=1e-12)
    assert result.delta.shape == (2, 2)
    got = torch.autograd.grad(result.loss, list(model.parameters()))
    want = torch.autograd.grad(expected, list(model.parameters()))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_sub_batch_penalty_moves_batch_norm_statistics_once(batch):
    x, y, references = batch
    model, plain = tiny_model().train(), tiny_model().train()
    orthogonal_loss(model, x, y, references[:, :3], 1.0, "abs", torch.arange(3))
    plain(x)  # one ordinary forward of the whole batch
    for name, buffer in plain.named_buffers():
        torch.testing.assert_close(dict(model.named_buffers())[name], buffer, rtol=0, atol=0)


def test_reference_gradients_must_match_the_penalty_rows(batch):
    x, y, references = batch
    with pytest.raises(ValueError, match=r"reference_grads: expected \(R, 2, 2, 5, 5\)"):
        orthogonal_loss(tiny_model(), x, y, references, 1.0, "abs", torch.tensor([0, 1]))
