"""An ImageNet-style class-folder dataset: ``root/<class name>/<image file>``.

Classes are the sub-folders of ``root`` in sorted order. The paper evaluates on the
ImageNet validation set split 80/20 into training and testing images (Section IV-B):
``split="train"`` / ``"val"`` gives that split, drawn per class with a fixed seed, so
the two parts never overlap and every class keeps its proportion.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from orthocore.checks import check_choice, check_number

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
# Larger images are refused when the folder is opened (a 12000×12000 file is a
# decompression bomb to PIL, and no classifier here needs more than ImageNet's sizes).
MAX_PIXELS = 40_000_000
_LISTED = 20  # bad files named in one error; the rest are counted


def _problem(path: Path, root: Path, max_pixels: int) -> str | None:
    """Why ``path`` cannot be read as an image of the folder ``root`` (resolved), or None."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        return f"resolves to {str(resolved)!r}, outside the data folder"
    if path.stat().st_size == 0:
        return "is empty"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            with Image.open(path) as image:  # the header first: the pixel limit holds before any decoding
                width, height = image.size
                if width * height > max_pixels:
                    return f"has {width}×{height} = {width * height:,} pixels, over max_pixels = {max_pixels:,}"
                image.draft("RGB", (1, 1))  # a JPEG decodes at 1/8 scale: every byte read, a fraction of the work
                image.load()
    except Image.DecompressionBombError:
        return f"is over PIL's decompression-bomb limit (far above max_pixels = {max_pixels:,})"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        return f"is truncated or not a readable image ({type(error).__name__}: {str(error)[:80]})"
    return None


def _verify(root: Path, files: list[list[Path]], max_pixels: int) -> None:
    """Raises one ``ValueError`` listing every file of ``files`` that is not a readable
    image inside ``root`` within the pixel limit, before anything is read or written."""
    real_root = root.resolve()
    bad = [f"{path}: {problem}" for images in files for path in images
           if (problem := _problem(path, real_root, max_pixels)) is not None]  # fmt: skip
    if bad:
        more = f"\n  ... and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
        raise ValueError(f"image folder {str(root)!r}: {len(bad)} bad file(s):\n  " + "\n  ".join(bad[:_LISTED]) + more)


def _scan(root: Path) -> tuple[list[str], list[list[Path]]]:
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist (expected root/<class>/<image>)")
    classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise ValueError(f"image folder {str(root)!r} has no class sub-folders (expected root/<class>/<image>)")
    files = []
    for name in classes:
        images = sorted(p for p in (root / name).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ValueError(
                f"image folder {str(root / name)!r} holds no images (expected files ending in {', '.join(IMAGE_SUFFIXES)})"
            )
        files.append(images)
    return classes, files


class ImageFolderDataset(Dataset):
    """Images of ``root/<class>/*`` as :math:`(3, S, S)` floats in [0, 1], resized and
    centre-cropped (the shorter side to ``resize``, then an ``image_size`` square).

    Args:
        root: the folder of class folders.
        split: ``"all"``, or ``"train"`` / ``"val"`` for the seeded per-class split.
        val_fraction: share of each class in ``"val"`` (the paper: 0.2).
        seed: seed of the split.
        image_size: side of the square crop.
        resize: shorter side after resizing, before the crop.
        max_pixels: the largest image (width × height) accepted.

    Every file's header is checked when the folder is opened: an empty or unreadable
    file, a link that leaves ``root``, or an image over ``max_pixels`` is refused then,
    all of them named in one error, before any training starts or any output is written.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: no class folders, a class folder without images, or bad files.
    """

    augmented = False

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "all",
        val_fraction: float = 0.2,
        seed: int = 0,
        image_size: int = 224,
        resize: int = 256,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        check_choice(split, "split", ("train", "val", "all"))
        check_number(val_fraction, "val_fraction", low=0, high=1, low_open=True, high_open=True)
        self.classes, files = _scan(Path(root))
        _verify(Path(root), files, max_pixels)
        self.num_classes = len(self.classes)
        self.image_size, self.resize = image_size, resize
        self.samples: list[tuple[Path, int]] = []
        generator = torch.Generator().manual_seed(seed)
        for label, images in enumerate(files):
            order = torch.randperm(len(images), generator=generator).tolist()
            n_val = round(val_fraction * len(images))
            chosen = {"all": order, "val": order[:n_val], "train": order[n_val:]}[split]
            self.samples += [(images[i], label) for i in sorted(chosen)]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        from PIL import Image
        from torchvision.transforms import functional as TF

        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")
            image = TF.center_crop(TF.resize(image, self.resize), self.image_size)
            return TF.to_tensor(image), label
