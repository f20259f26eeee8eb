"""Models the benchmarks attack: trained in seconds, so that attacks fool some images and
not others, as they do in the studies."""

import torch
import torch.nn.functional as F

from orthocore.data import load_digits
from orthocore.models import create


def trained_digits_cnn() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The digits demo's CNN trained for 15 epochs (seeded, a few seconds; about 98 %
    validation accuracy), in eval mode, with the validation images it classifies
    correctly (340-odd) and their labels."""
    torch.manual_seed(0)
    train = load_digits("train")
    model = create("digits_cnn")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(15):
        for batch in torch.randperm(len(train.labels)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(train.images[batch]), train.labels[batch]).backward()
            optimizer.step()
    model.eval()
    val = load_digits("val")
    with torch.no_grad():
        correct = model(val.images).argmax(1) == val.labels
    return model, val.images[correct], val.labels[correct]
