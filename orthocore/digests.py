"""Short stable digests that name cached work: of settings, and of model files."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from orthocore._io import sha256_of


def fingerprint(*parts: Any) -> str:
    """A short stable digest of JSON-serialisable ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (the identity of a trained model), shortened."""
    return sha256_of(path)[:16]
