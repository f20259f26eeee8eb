"""The paper's whole study as one resumable, cached pipeline (``orthocore demo``,
``orthocore run --config study.toml``)."""

from orthocore.study.config import StudyConfig, demo_config
from orthocore.study.pipeline import run_study

__all__ = ["StudyConfig", "demo_config", "run_study"]
