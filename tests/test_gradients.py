"""Input gradients through torch.func, the similarity δ, and the reference-gradient cache."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from orthocore import models
from orthocore.data import load_digits
from orthocore.gradients import ReferenceGradientCache, deltas, input_gradients, reference_gradients, similarity
from orthocore.ops import normalized_dot_reference

pytestmark = pytest.mark.usefixtures("one_thread")


def bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10)).double()


def batch(n=5):
    generator = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 8, 8, generator=generator, dtype=torch.float64), torch.randint(0, 10, (n,), generator=generator)


def test_eval_mode_rows_are_per_sample_gradients():
    model = bn_model().eval()
    x, y = batch()
    grads, logits = input_gradients(model, x, y)
    torch.testing.assert_close(logits, model(x))
    for i in range(len(y)):
        xi = x[i : i + 1].clone().requires_grad_()
        (expected,) = torch.autograd.grad(F.cross_entropy(model(xi), y[i : i + 1]), xi)
        torch.testing.assert_close(grads[i : i + 1], expected)


def test_train_mode_is_the_gradient_of_the_summed_loss_and_updates_running_stats_once():
    model, twin = bn_model().train(), bn_model().train()
    x, y = batch()
    grads, _ = input_gradients(model, x, y)
    xr = x.clone().requires_grad_()
    (expected,) = torch.autograd.grad(F.cross_entropy(twin(xr), y, reduction="sum"), xr)
    torch.testing.assert_close(grads, expected)
    for a, b in zip(model.buffers(), twin.buffers()):
        assert torch.equal(a, b)  # one forward's update of the BatchNorm statistics
    assert int(model[1].num_batches_tracked) == 1


def test_reference_gradients_carry_no_graph():
    model = bn_model().eval()
    assert not reference_gradients(model, *batch()).requires_grad


def test_similarity_statistics():
    data = load_digits("val")
    a, b = models.create("digits_cnn"), models.create("digits_cnn")
    values = deltas(a, b, data, batch_size=100)
    x, y = data.images, data.labels
    expected = normalized_dot_reference(reference_gradients(a.eval(), x, y), reference_gradients(b.eval(), x, y))
    torch.testing.assert_close(values, expected.double(), rtol=1e-5, atol=1e-6)
    stats = similarity(a, b, (x, y))
    assert stats.count == 359
    assert stats.mean == pytest.approx(expected.double().mean().item(), abs=1e-6)
    assert stats.abs_mean == pytest.approx(expected.double().abs().mean().item(), abs=1e-6)
    assert stats.std == pytest.approx(expected.double().std().item(), abs=1e-6)
    assert similarity(a, a, (x, y)).mean == pytest.approx(1.0, abs=1e-5)
    assert "|δ| =" in stats.row()


def test_similarity_restores_training_mode():
    a, b = models.create("resnet20").train(), models.create("resnet20").eval()
    similarity(a, b, (torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))))
    assert a.training and not b.training


def test_cache_in_memory_and_on_disk(tmp_path):
    data = load_digits("val")
    references = [models.create("digits_cnn").eval(), models.create("digits_cnn").eval()]
    index = torch.tensor([3, 0, 358, 3])
    x, y = data.images[index], data.labels[index]
    expected = torch.stack([reference_gradients(r, x, y) for r in references])  # (R, B, 1, 8, 8)
    memory = ReferenceGradientCache(references, data, batch_size=100)
    torch.testing.assert_close(memory[index], expected)
    disk = ReferenceGradientCache(references, data, path=tmp_path / "grads.npy", key="k1", batch_size=100)
    torch.testing.assert_close(disk[index], expected)
    # A later run with the same key reads the file instead of recomputing ...
    others = [models.create("digits_cnn").eval(), models.create("digits_cnn").eval()]
    torch.testing.assert_close(ReferenceGradientCache(others, data, path=tmp_path / "grads.npy", key="k1")[index], expected)
    # ... and rebuilds it when the key differs.
    rebuilt = ReferenceGradientCache(others, data, path=tmp_path / "grads.npy", key="k2")[index]
    assert not torch.allclose(rebuilt, expected)


def test_cache_refuses_augmented_data():
    data = load_digits("val")
    data.augmented = True
    with pytest.raises(ValueError, match="augmented"):
        ReferenceGradientCache([models.create("digits_cnn").eval()], data)
