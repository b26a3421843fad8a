"""Learning-rate schedules: small frozen records, each a function of the step number.

Every schedule ``s`` gives the rate at step ``t`` (``t = 0, 1, ...``) as ``s(t)`` and the
whole sequence for ``n_steps`` steps as ``s.values(n_steps)`` (a float64 tensor). A plain
number passed where a schedule is expected means a constant rate (see :func:`as_schedule`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import _validate as check


class Schedule:
    """Base class: subclasses define ``__call__(step) -> float``."""

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, n_steps: int) -> torch.Tensor:
        """Rates for steps ``0 .. n_steps-1``, shape ``(n_steps,)``, float64."""
        n_steps = check.integer("n_steps", n_steps, minimum=1)
        return torch.tensor([self(t) for t in range(n_steps)], dtype=torch.float64)

    @property
    def peak(self) -> float:
        """The largest rate the schedule reaches (its ``lr`` argument)."""
        return self.lr  # type: ignore[attr-defined]


def _fraction(step: int, n_steps: int) -> float:
    return min(max(step, 0), n_steps) / n_steps


@dataclass(frozen=True)
class Constant(Schedule):
    """``lr`` at every step."""

    lr: float

    def __post_init__(self):
        check.real("lr", self.lr, nonnegative=True)

    def __call__(self, step: int) -> float:
        return self.lr


@dataclass(frozen=True)
class _Decay(Schedule):
    """A decay from ``lr`` at step 0 to ``final`` at step ``n_steps`` (then held)."""

    lr: float
    n_steps: int
    final: float = 0.0

    def __post_init__(self):
        check.real("lr", self.lr, nonnegative=True)
        check.real("final", self.final, nonnegative=True)
        check.integer("n_steps", self.n_steps, minimum=1)


@dataclass(frozen=True)
class Linear(_Decay):
    """Linear decay from ``lr`` at step 0 to ``final`` at step ``n_steps`` (then held)."""

    def __call__(self, step: int) -> float:
        return self.lr + (self.final - self.lr) * _fraction(step, self.n_steps)


@dataclass(frozen=True)
class Cosine(_Decay):
    """Half-cosine decay from ``lr`` to ``final`` over ``n_steps`` steps (then held)."""

    def __call__(self, step: int) -> float:
        f = _fraction(step, self.n_steps)
        return self.final + 0.5 * (self.lr - self.final) * (1.0 + math.cos(math.pi * f))


@dataclass(frozen=True)
class Exponential(_Decay):
    """Geometric decay ``lr * (final / lr) ** (t / n_steps)`` from ``lr`` at step 0 to ``final`` at step
    ``n_steps`` (then held). A geometric decay never reaches zero, so ``final`` must be > 0; the
    constant factor per step is ``(final / lr) ** (1 / n_steps)``."""

    final: float = 1e-3

    def __post_init__(self):
        check.real("lr", self.lr, positive=True)
        check.real("final", self.final, positive=True)
        check.integer("n_steps", self.n_steps, minimum=1)

    @property
    def factor(self) -> float:
        """The ratio of successive rates, ``(final / lr) ** (1 / n_steps)``."""
        return (self.final / self.lr) ** (1.0 / self.n_steps)

    def __call__(self, step: int) -> float:
        return self.lr * (self.final / self.lr) ** _fraction(step, self.n_steps)


@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Warmup-stable-decay: linear warmup from 0 over ``warmup`` steps, constant ``lr``, then a
    linear decay to ``final`` over the last ``decay_fraction`` of the ``n_steps`` steps."""

    lr: float
    n_steps: int
    warmup: int = 0
    decay_fraction: float = 0.2
    final: float = 0.0

    def __post_init__(self):
        check.real("lr", self.lr, nonnegative=True)
        check.real("final", self.final, nonnegative=True)
        check.integer("n_steps", self.n_steps, minimum=1)
        check.integer("warmup", self.warmup, minimum=0)
        check.real("decay_fraction", self.decay_fraction, nonnegative=True)
        if self.decay_fraction > 1:
            raise ValueError(f"decay_fraction must be in [0, 1]; got {self.decay_fraction!r}.")
        if self.warmup + round(self.decay_fraction * self.n_steps) > self.n_steps:
            raise ValueError(
                f"warmup ({self.warmup}) plus the decay ({self.decay_fraction} x {self.n_steps} steps) "
                f"exceed n_steps ({self.n_steps}); shorten one of them."
            )

    @property
    def decay_start(self) -> int:
        """First step of the decay phase."""
        return self.n_steps - round(self.decay_fraction * self.n_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        start = self.decay_start
        if step < start:
            return self.lr
        span = self.n_steps - start
        return self.lr + (self.final - self.lr) * min(step - start, span) / max(span, 1)


@dataclass(frozen=True)
class InverseTime(Schedule):
    """``lr * t0 / (t + t0)``: the rate that is optimal for one quadratic valley (Chapter 6)."""

    lr: float
    t0: float

    def __post_init__(self):
        check.real("lr", self.lr, nonnegative=True)
        check.real("t0", self.t0, positive=True)

    def __call__(self, step: int) -> float:
        return self.lr * self.t0 / (max(step, 0) + self.t0)


def as_schedule(lr) -> Schedule:
    """Return ``lr`` if it is a schedule, or a :class:`Constant` schedule if it is a number.

    Raises ``ValueError`` for a negative rate and ``TypeError`` for anything else.
    """
    if isinstance(lr, Schedule):
        return lr
    if callable(lr):
        raise TypeError(
            "lr must be a number or an ntcourse schedule (Constant, Linear, Cosine, Exponential, "
            f"WarmupStableDecay, InverseTime); got a plain callable {lr!r}. Wrap custom rules in a Schedule subclass."
        )
    value = check.real("lr", lr)
    if value < 0:
        raise ValueError(f"lr (the learning rate) must be >= 0; got {value!r}.")
    return Constant(value)
