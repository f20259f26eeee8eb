"""Algorithm 1's stopping rule: evaluate every N epochs, stop when accuracy stops improving."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StoppingRule:
    """Lines 2 and 11–13 of Algorithm 1, with a cap on the number of epochs.

    Validation accuracy is measured after every ``eval_every``-th epoch; training stops at
    the first evaluation that does not improve on the previous one, or after
    ``max_epochs``. The paper uses ``eval_every = 20``.

    Attributes:
        eval_every: epochs between evaluations.
        max_epochs: hard limit.
        history: ``(epoch, accuracy)`` of every evaluation so far (saved for resume).
    """

    eval_every: int = 20
    max_epochs: int = 200
    history: list[tuple[int, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.eval_every < 1 or self.max_epochs < 1:
            raise ValueError(f"eval_every and max_epochs must be >= 1, got {self.eval_every}, {self.max_epochs}")

    def evaluates_after(self, epoch: int) -> bool:
        """Whether validation accuracy is measured after ``epoch`` (1-based); also the last one."""
        return epoch % self.eval_every == 0 or epoch == self.max_epochs

    def record(self, epoch: int, accuracy: float) -> None:
        self.history.append((epoch, float(accuracy)))

    def should_stop(self, epoch: int) -> bool:
        """After ``epoch``: stop when the cap is reached or the last evaluation did not improve."""
        if epoch >= self.max_epochs:
            return True
        if len(self.history) >= 2 and self.history[-1][0] == epoch:
            return self.history[-1][1] <= self.history[-2][1]
        return False

    @property
    def best(self) -> tuple[int, float] | None:
        """``(epoch, accuracy)`` of the best evaluation so far (the earliest on ties)."""
        return max(self.history, key=lambda item: (item[1], -item[0])) if self.history else None
