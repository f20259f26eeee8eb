"""An in-memory image dataset over one tensor of images and one of labels."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from orthocore.checks import check_shape


def random_crop_flip(image: Tensor, padding: int = 4) -> Tensor:
    """CIFAR augmentation: a random crop from the zero-padded image and a random horizontal
    flip, drawn from torch's global RNG (so that a resumed run replays it).

    Args:
        image: :math:`(C, H, W)`.
        padding: pixels of zero padding on each side before cropping.

    Returns:
        :math:`(C, H, W)`.
    """
    _, height, width = image.shape
    padded = torch.nn.functional.pad(image, (padding, padding, padding, padding))
    top, left = torch.randint(0, 2 * padding + 1, (2,)).tolist()
    crop = padded[:, top : top + height, left : left + width]
    return crop.flip(-1) if torch.rand(()) < 0.5 else crop


class TensorImageDataset(Dataset):
    """Images held in memory, returned as float :math:`(C, H, W)` in [0, 1] with an int label.

    Args:
        images: :math:`(N, C, H, W)`, uint8 (divided by 255) or float in [0, 1].
        labels: :math:`(N,)` integer class indices in ``[0, num_classes)``.
        num_classes: number of classes.
        augment: apply :func:`random_crop_flip` to every sample read.

    Attributes:
        augmented: whether reads are random (reference gradients cannot be cached).
    """

    def __init__(self, images: Tensor, labels: Tensor, num_classes: int, augment: bool = False) -> None:
        sizes = check_shape(images, "images", ["N", "C", "H", "W"], where="TensorImageDataset")
        check_shape(labels, "labels", [sizes["N"]], where="TensorImageDataset")
        self.images = images
        self.labels = labels.long()
        self.num_classes = num_classes
        self.augmented = augment

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index]
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        if self.augmented:
            image = random_crop_flip(image)
        return image, int(self.labels[index])
