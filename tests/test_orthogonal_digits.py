"""End to end on the embedded digits: an orthogonal model keeps the reference's accuracy
while its input gradients become near-orthogonal to the reference's, and an independently
trained ordinary model stays aligned (Table I's finding, on 8x8 digits)."""

import pytest

from orthocore.checkpoint import load_model
from orthocore.data import load_digits
from orthocore.gradients import similarity
from orthocore.train import TrainConfig, accuracy, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_orthogonal_model_on_digits(tmp_path):
    common = dict(arch="digits_cnn", data="digits", batch_size=64, progress=False)
    # Fixed epoch counts (eval_every = max_epochs): the comparison should not hinge on
    # where a noisy 360-image validation curve first dips.
    train(TrainConfig(out=str(tmp_path / "reference"), seed=1, max_epochs=15, eval_every=15, **common))
    ordinary = train(TrainConfig(out=str(tmp_path / "ordinary"), seed=2, max_epochs=15, eval_every=15, **common))
    orthogonal = train(
        TrainConfig(
            out=str(tmp_path / "orthogonal"),
            seed=3,
            lam=3.0,
            references=[str(tmp_path / "reference" / "model.ckpt")],
            max_epochs=30,
            eval_every=30,
            **common,
        )
    )
    val = load_digits("val")
    ref_model = load_model(tmp_path / "reference" / "model.ckpt")
    ordinary_similarity = similarity(ref_model, ordinary.model, val)
    orthogonal_similarity = similarity(ref_model, orthogonal.model, val)
    ref_accuracy = accuracy(ref_model, val, "cpu")
    orth_accuracy = accuracy(orthogonal.model, val, "cpu")
    summary = (
        f"reference {ref_accuracy:.1f}%, orthogonal {orth_accuracy:.1f}% "
        f"|δ| {orthogonal_similarity.abs_mean:.3f}, ordinary |δ| {ordinary_similarity.abs_mean:.3f}"
    )
    assert orthogonal_similarity.abs_mean < 0.05, summary
    assert ordinary_similarity.abs_mean > 0.3, summary
    assert abs(orth_accuracy - ref_accuracy) <= 3.0, summary
    assert ref_accuracy > 94.0, summary
