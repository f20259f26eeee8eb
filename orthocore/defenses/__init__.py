"""Input-transformation defenses of the paper's Table III as modules that can sit in
front of a model; each module's ``PAPER_SETTINGS`` holds the paper's four variants."""

from orthocore.defenses.bilateral import Bilateral
from orthocore.defenses.tv import TVDenoise

__all__ = ["Bilateral", "TVDenoise"]
