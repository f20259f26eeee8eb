"""How many images an attack can push through the model at once.

A probe forward pass on a few rows counts the bytes autograd saves for the backward
pass (``saved_tensors_hooks``, on any device); with the memory free on the device that
gives the rows per chunk. Its logits serve the label check (when no probe runs, the
attack's first forward pass checks the labels instead). The count is
remembered per model and image shape (and the model's parameter count, so a model whose
layers were swapped is probed again): a repeated attack on the same model skips the
probe. On a GPU the probe is a launch-bound model pass of its own, next to the single
gradient pass of an FGSM sweep.

On a CPU, chunks are also kept small (``CPU_CHUNK_BYTES`` of saved activations): bigger
passes are slower per image there, not faster. Measured on ResNet-20 (2.4 MiB saved per
32x32 image, 2 cores): a 10-step I-FGSM sweep over 512 images ran 1.2-1.3x faster in
chunks of 66 than in passes of all 512, as every pass allocates and touches fresh
activation buffers.
A GPU gets the largest chunk that fits: there a bigger batch is what fills the device.
"""

from __future__ import annotations

import os
import weakref

import torch
from torch import Tensor, nn

MEMORY_ENV = "ORTHOCORE_ATTACK_MEMORY"
# Share of the free memory a chunk may use, and bytes per saved byte (the backward pass
# holds gradients of about the saved activations' size next to them).
_FREE_SHARE = 0.5
_OVERHEAD = 3
CPU_CHUNK_BYTES = 160 * 2**20
GPU_FORWARD_BYTES = 4 * 2**30


def free_bytes(device: torch.device) -> int:
    """Memory an attack may use on ``device``: ``ORTHOCORE_ATTACK_MEMORY`` (bytes) if set,
    else a share of the free GPU memory or of the available RAM."""
    if os.environ.get(MEMORY_ENV):
        return int(float(os.environ[MEMORY_ENV]))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(free * _FREE_SHARE)


# model -> {(image shape, dtype, device, parameter count): saved bytes per row}
_REMEMBERED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _key(model: nn.Module, images: Tensor) -> tuple:
    parameters = sum(p.numel() for p in model.parameters()) if isinstance(model, nn.Module) else 0
    return tuple(images.shape[1:]), images.dtype, images.device, parameters


def saved_bytes_per_row(model: nn.Module, images: Tensor) -> tuple[Tensor | None, int]:
    """The activation bytes autograd keeps per image of ``images``' shape: remembered from
    an earlier call for this model, else counted by a :func:`probe` (and remembered).

    Returns:
        ``(logits, bytes)``: the probe's logits :math:`(n, K)`, ``None`` when no probe ran.
    """
    key = _key(model, images)
    try:
        known = _REMEMBERED.get(model, {}).get(key)
    except TypeError:  # a callable that cannot be weakly referenced: never remembered
        return probe(model, images)
    if known is not None:
        return None, known
    logits, per_row = probe(model, images)
    _REMEMBERED.setdefault(model, {})[key] = per_row
    return logits, per_row


def probe(model: nn.Module, images: Tensor, rows: int = 4) -> tuple[Tensor, int]:
    """One forward pass on the first ``rows`` images with input gradients on.

    Returns:
        ``(logits, saved_bytes_per_row)``: the probe's logits :math:`(n, K)` and the
        activation bytes autograd keeps per image.
    """
    x = images[:rows].detach().requires_grad_(True)
    saved = 0

    def pack(tensor: Tensor) -> Tensor:
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        logits = model(x)
    return logits.detach(), max(1, saved // x.shape[0])


def forward_rows(saved_per_row: int, total_rows: int, device: torch.device) -> int:
    """Rows per forward-only pass (query attacks): a fixed activation budget, not the free
    memory, so that the batches, and with them every float result, do not depend on what
    else the machine holds (a query attack's accept/reject decisions amplify last-bit
    differences). CPU: ``CPU_CHUNK_BYTES``; GPU: ``GPU_FORWARD_BYTES``."""
    budget = CPU_CHUNK_BYTES if device.type == "cpu" else GPU_FORWARD_BYTES
    return max(1, min(total_rows, budget // saved_per_row))


def rows_per_chunk(saved_per_row: int, image_bytes: int, total_rows: int, device: torch.device) -> int:
    """Rows per chunk so that activations, gradients and the attack's own buffers (about
    six images per row: clean, adversarial, gradient, momentum, outputs) fit."""
    per_row = _OVERHEAD * saved_per_row + 6 * image_bytes
    rows = free_bytes(device) // per_row
    if device.type == "cpu":
        rows = min(rows, CPU_CHUNK_BYTES // saved_per_row)
    return max(1, min(total_rows, rows))
