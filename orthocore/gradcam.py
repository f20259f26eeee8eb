"""Grad-CAM (Selvaraju et al., 2017) for any convolutional classifier, batched.

For a target layer with activations :math:`A \\in (B, K, h, w)` and the score
:math:`y_c` of class ``c``, the map is

    L = ReLU( Σ_k α_k A_k ),   α_k = mean over (h, w) of ∂y_c / ∂A_k,

upsampled bilinearly to the input size and scaled to [0, 1] per image (a map that is
all zeros stays zeros). The paper's Fig. 3 compares these maps between a reference
model and its orthogonal versions.

Unlike some peers, the model's train/eval mode is left as the caller set it, and the
hooks live only for the duration of one call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orthocore.checks import check_images, check_labels


def last_conv_layer(model: nn.Module) -> str:
    """The qualified name of the last ``nn.Conv2d`` registered in ``model``.

    Raises:
        ValueError: if the model has no ``nn.Conv2d``.
    """
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    if not names:
        raise ValueError("gradcam: model has no nn.Conv2d layer; pass target_layer= explicitly")
    return names[-1]


def gradcam(
    model: nn.Module,
    images: Tensor,
    classes: Tensor | None = None,
    target_layer: str | None = None,
) -> Tensor:
    """Grad-CAM maps of a batch.

    Args:
        model: a classifier mapping :math:`(B, C, H, W)` to logits :math:`(B, N)`.
        images: :math:`(B, C, H, W)` in [0, 1].
        classes: :math:`(B,)` class per image; default: the model's prediction.
        target_layer: qualified module name (as in ``model.named_modules()``); default:
            the last ``nn.Conv2d``.

    Returns:
        :math:`(B, H, W)` float32 maps in [0, 1].

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
        >>> gradcam(net, torch.rand(4, 1, 8, 8)).shape
        torch.Size([4, 8, 8])
    """
    batch = check_images(images, "images", values=False, where="gradcam")["B"]
    name = target_layer if target_layer is not None else last_conv_layer(model)
    modules = dict(model.named_modules())
    if name not in modules:
        raise ValueError(f"gradcam: target_layer {name!r} is not a module of the model")
    if classes is not None:
        check_labels(classes, batch, name="classes", where="gradcam")

    captured: list[Tensor] = []
    handle = modules[name].register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        with torch.enable_grad():
            logits = model(images)  # (B, N)
            if classes is None:
                classes = logits.argmax(1)
            if not captured:
                raise ValueError(f"gradcam: target_layer {name!r} was not called in the forward pass")
            activations = captured[-1]  # (B, K, h, w)
            score = logits.gather(1, classes.view(-1, 1).to(logits.device)).sum()
            (grads,) = torch.autograd.grad(score, activations)
    finally:
        handle.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
    maps = F.relu((weights * activations).sum(1, keepdim=True)).detach()  # (B, 1, h, w)
    maps = F.interpolate(maps.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = maps.flatten(1).amax(1).view(-1, 1, 1)  # (B, 1, 1)
    low = maps.flatten(1).amin(1).view(-1, 1, 1)
    span = peak - low
    return torch.where(span > 0, (maps - low) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(maps))
