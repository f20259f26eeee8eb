"""Input gradients of the cross-entropy loss (``torch.func``) and the similarity δ of Eq. 1.

δ_i is the cosine between the input gradients of two models for sample ``i``; a model
pair's similarity is the mean ± std of δ over a data set (Tables I and II of the paper).

BatchNorm: :func:`input_gradients` differentiates the *sum* of the per-sample losses of
the batch with respect to the batch of inputs. In eval mode (running statistics) every
sample's forward is independent, so row ``i`` is exactly ∇_{x_i} L_i. In train mode the
batch mean and variance depend on every sample, and row ``i`` is ∇_{x_i} Σ_j L_j: it adds
the effect of ``x_i`` on the other samples' losses through the batch statistics, a term
of order 1/B. That is the gradient the trainer's forward really has, and the one it
makes orthogonal; similarities are always measured in eval mode.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from orthocore import distributed
from orthocore._io import atomic_path, atomic_write_json, move_aside, seal_file, seal_path, seal_problem
from orthocore.modes import eval_mode
from orthocore.ops import normalized_dot
from orthocore.progress import progress as progress_report


def input_gradients(model: nn.Module, x: Tensor, y: Tensor, *, update_buffers: bool = True) -> tuple[Tensor, Tensor]:
    """∇_x Σ_i CE(model(x)_i, y_i) and the logits, from one forward pass, via ``torch.func.grad``.

    The model's parameters are closed over, so when they require grad the returned
    gradient is itself differentiable with respect to them by ordinary autograd (double
    backprop). The module's buffers are passed through the transform, so a train-mode
    BatchNorm updates its running statistics once, as an ordinary forward would.

    Args:
        model: a classifier taking ``x``.
        x: :math:`(B, C, H, W)` images.
        y: :math:`(B,)` integer labels.
        update_buffers: False runs the forward on copies of the buffers, so that a
            train-mode BatchNorm normalises with the batch's statistics but leaves its
            running statistics alone (a second forward of the same step).

    Returns:
        ``(grad, logits)``: :math:`(B, C, H, W)` and :math:`(B, K)`.
    """
    buffers = {name: buffer if update_buffers else buffer.clone() for name, buffer in model.named_buffers()}

    def summed_loss(inputs: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        logits = torch.func.functional_call(model, state, (inputs,))
        return F.cross_entropy(logits, y, reduction="sum"), logits

    return torch.func.grad(summed_loss, has_aux=True)(x, buffers)


def reference_gradients(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Input gradients of a frozen model, without a graph: :math:`(B, C, H, W)`.

    The model is used as it is (put it in eval mode first for per-sample gradients).
    """
    with torch.no_grad():
        return input_gradients(model, x, y)[0]


@dataclass(frozen=True)
class Similarity:
    """Statistics of δ over a data set.

    Attributes:
        mean: mean of δ.
        std: standard deviation of δ.
        abs_mean: mean of |δ|.
        abs_std: standard deviation of |δ|.
        count: number of samples.
    """

    mean: float
    std: float
    abs_mean: float
    abs_std: float
    count: int

    def row(self) -> str:
        """The Table-I-style cell: ``δ = mean ± std  |δ| = mean ± std  (n)``."""
        return (
            f"δ = {self.mean:+.3f} ± {self.std:.3f}   |δ| = {self.abs_mean:.3f} ± {self.abs_std:.3f}   (n = {self.count})"
        )


def _loader(data: Dataset | DataLoader | tuple[Tensor, Tensor], batch_size: int) -> Iterable:
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError("data: expected a Dataset, a DataLoader or an (images, labels) tuple")
        data = TensorDataset(*data)
    return DataLoader(data, batch_size=batch_size, shuffle=False)


def deltas(model_a: nn.Module, model_b: nn.Module, data, *, batch_size: int = 256, device=None,
           progress: bool = False) -> Tensor:  # fmt: skip
    """Per-sample δ between two models over ``data``, both in eval mode: :math:`(N,)` float64.

    Args:
        model_a, model_b: classifiers of the same inputs.
        data: a Dataset of ``(image, label)``, a DataLoader of batches, or an
            ``(images (N, C, H, W), labels (N,))`` tuple.
        batch_size: when ``data`` is not a DataLoader.
        device: where to compute; default the device of ``model_a``'s parameters.
        progress: report progress per batch (:func:`orthocore.progress.progress`).
    """
    if device is None:
        device = next(model_a.parameters()).device
    values = []
    with eval_mode(model_a, model_b):
        for batch in progress_report(_loader(data, batch_size), desc="similarity", unit="batch", enabled=progress):
            x, y = batch[0].to(device), batch[1].to(device)
            values.append(normalized_dot(reference_gradients(model_a, x, y), reference_gradients(model_b, x, y)))
    if not values:
        raise ValueError("data: the data set is empty")
    return torch.cat(values).double().cpu()


def _std(values: Tensor) -> float:
    return float(values.std()) if values.numel() > 1 else 0.0


def similarity(model_a: nn.Module, model_b: nn.Module, data, *, batch_size: int = 256, device=None,
               progress: bool = False) -> Similarity:  # fmt: skip
    """Mean ± std of δ and of |δ| between two models over a data set (Tables I, II).

    Arguments as in :func:`deltas`.

    Examples:
        >>> import torch
        >>> from orthocore import gradients, models
        >>> a, b = models.create("digits_cnn"), models.create("digits_cnn")
        >>> data = (torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,)))
        >>> round(gradients.similarity(a, a, data).mean, 4)
        1.0
    """
    values = deltas(model_a, model_b, data, batch_size=batch_size, device=device, progress=progress)
    return Similarity(
        mean=float(values.mean()),
        std=_std(values),
        abs_mean=float(values.abs().mean()),
        abs_std=_std(values.abs()),
        count=values.numel(),
    )


class ReferenceGradientCache:
    """Input gradients of frozen reference models for every sample of a training set.

    The references never change, so without random augmentation each sample's gradient
    is computed once (in eval mode, without a graph) and read back every epoch. The
    cache is a float32 array :math:`(R, N, C, H, W)` in memory, or a ``.npy`` file on
    disk for large sets (memory-mapped; written to a temporary file and renamed when
    complete, sealed with its digest, and reused by a later run when its ``.json`` key
    and its seal match; a damaged file is moved aside with a warning and rebuilt).

    Several processes (:mod:`orthocore.distributed`) share the filling: process r
    computes samples r, r + W, …; in memory the parts are then summed into every
    process's full copy (each row comes from one process, zeros elsewhere, so the sum is
    exact), and on disk every process writes its rows into the one file, which then
    needs a folder that all processes see (one machine, or a shared file system).

    Args:
        references: the R frozen models, in eval mode.
        dataset: the training set, ``dataset[i] = (image, label)``, unaugmented.
        path: where to keep the cache on disk; None keeps it in memory.
        key: identifies references and data (e.g. checkpoint paths and sizes); a disk
            cache with another key is rebuilt.
        batch_size: batch size of the one pass that fills the cache.
        device: where the references run.
    """

    def __init__(self, references, dataset, *, path=None, key=None, batch_size=256, device="cpu") -> None:
        if getattr(dataset, "augmented", False):
            raise ValueError("dataset: reference gradients of an augmented data set change every epoch; do not cache them")
        self.path = None if path is None else os.fspath(path)
        shape = (len(references), len(dataset), *dataset[0][0].shape)
        meta = {"key": key, "shape": list(shape)}
        mine = distributed.shard(len(dataset))
        self._memory: Tensor | None = None
        self._disk: np.ndarray | None = None
        if self.path is None:
            self._memory = torch.zeros(shape, dtype=torch.float32)
            self._fill(self._memory, references, dataset, mine, batch_size, device)
            distributed.sum_in_place(self._memory)
            return
        if not distributed.on_main(lambda: _disk_cache_sound(self.path, meta)):
            self._build_file(shape, meta, references, dataset, mine, batch_size, device)
        self._disk = np.load(self.path, mmap_mode="r")

    def _build_file(self, shape, meta, references, dataset, mine, batch_size, device) -> None:
        """Fills the ``.npy`` file in place on disk, never held in memory: rank 0 creates
        it under a temporary name, every process writes its rows, rank 0 renames it."""
        world = distributed.world()
        with contextlib.ExitStack() as stack:
            tmp = None
            if world.main:
                tmp = stack.enter_context(atomic_path(self.path))
                np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape).flush()
            tmp = distributed.broadcast(tmp)
            array = np.load(tmp, mmap_mode="r+")
            self._fill(torch.from_numpy(array), references, dataset, mine, batch_size, device)
            array.flush()
            del array
            distributed.barrier()  # every row is on disk before rank 0 renames the file
        if world.main:
            seal_file(self.path)
            atomic_write_json(self.path + ".json", meta)
        distributed.barrier()

    @staticmethod
    def _fill(grads: Tensor, references, dataset, indices: range, batch_size, device) -> None:
        """Rows ``indices`` of ``grads`` :math:`(R, N, C, H, W)`, in batches in their order."""
        positions, start = torch.tensor(list(indices), dtype=torch.long), 0
        for x, y in DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False):
            rows = positions[start : start + len(y)]
            x, y = x.to(device), y.to(device)
            for r, reference in enumerate(references):
                grads[r, rows] = reference_gradients(reference, x, y).float().cpu()
            start += len(y)

    def __getitem__(self, indices: Tensor) -> Tensor:
        """Gradients of samples ``indices`` :math:`(B,)`: :math:`(R, B, C, H, W)` float32."""
        if self._memory is not None:
            return self._memory[:, indices.cpu()]
        return torch.from_numpy(self._disk[:, indices.cpu().numpy()])  # fancy indexing copies


def _disk_cache_sound(path: str, meta: dict) -> bool:
    """Whether the ``.npy`` cache at ``path`` was built for ``meta`` and is whole: its
    key file parses and matches, its seal matches its bytes, and it loads with the
    recorded shape. A damaged file (of the two) is moved aside, with a warning; a cache
    built for another key, or before caches were sealed, is simply rebuilt."""
    key_path = path + ".json"
    if not os.path.isfile(path):
        return False
    try:
        with open(key_path) as file:
            recorded = json.load(file)
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as error:
        move_aside(key_path, f"does not parse: {error}")
        move_aside(path, f"its key file {key_path!r} was damaged")
        return False
    if recorded != meta or not seal_path(path).is_file():
        return False
    problem = seal_problem(path)
    if problem is None:
        try:
            if list(np.load(path, mmap_mode="r").shape) != meta["shape"]:
                problem = f"holds another shape than the recorded {meta['shape']}"
        except (OSError, ValueError) as error:
            problem = f"does not load: {error}"
    if problem is not None:
        move_aside(path, problem)
        return False
    return True
