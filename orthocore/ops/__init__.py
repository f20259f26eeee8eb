"""orthocore's fused operators: each a ``torch.library`` custom op in the ``orthocore``
namespace with a plain-PyTorch reference beside it (see :mod:`orthocore.dispatch`)."""

from orthocore.ops.normalized_dot import normalized_dot, normalized_dot_reference

__all__ = ["normalized_dot", "normalized_dot_reference"]
