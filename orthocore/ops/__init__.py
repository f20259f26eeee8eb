"""orthocore's fused operators: each a ``torch.library`` custom op in the ``orthocore``
namespace with a plain-PyTorch reference beside it (see :mod:`orthocore.dispatch`)."""

from orthocore.ops import batch_norm  # noqa: F401  (registers the double backward's backends)
from orthocore.ops.attack_step import attack_step, attack_step_reference
from orthocore.ops.bilateral import bilateral, bilateral_reference
from orthocore.ops.bit_depth import bit_depth, bit_depth_reference
from orthocore.ops.jpeg import jpeg, jpeg_reference
from orthocore.ops.normalized_dot import normalized_dot, normalized_dot_reference
from orthocore.ops.tv_denoise import tv_denoise, tv_denoise_reference, tv_reconstruct

__all__ = [
    "attack_step",
    "attack_step_reference",
    "bilateral",
    "bilateral_reference",
    "bit_depth",
    "bit_depth_reference",
    "jpeg",
    "jpeg_reference",
    "normalized_dot",
    "normalized_dot_reference",
    "tv_denoise",
    "tv_denoise_reference",
    "tv_reconstruct",
]
