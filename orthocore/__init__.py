"""orthocore: orthogonal deep models as a defense against transferred adversarial attacks.

Import never fails for lack of a GPU or of the compiled extension: what is missing is
reported by :func:`orthocore.backends` (and a warning), and the plain-PyTorch reference
runs instead.
"""

import torch  # noqa: F401  (loads libtorch before the extension)

from orthocore import ops
from orthocore.dispatch import BackendUnavailableError, backends, use_backend

__version__ = "0.1.0"

__all__ = ["BackendUnavailableError", "backends", "ops", "use_backend", "__version__"]
