"""How a lab reports a check: prediction, measurement, ratio; and numbers glued into the book.

A lab prints every comparison it asserts, so a reader sees the numbers behind each check,
and glues the headline numbers so the prose quotes the values of the run that built the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import _validate as check


@dataclass(frozen=True)
class Comparison:
    """A prediction next to a measurement (and the measurement's standard error, if known)."""

    label: str
    predicted: float
    measured: float
    sem: float | None = None

    @property
    def ratio(self) -> float:
        """measured / predicted."""
        return self.measured / self.predicted

    @property
    def rel_error(self) -> float:
        """``abs(measured / predicted - 1)``."""
        return abs(self.ratio - 1.0)

    def __str__(self) -> str:
        err = f" ± {self.sem:.3g}" if self.sem is not None else ""
        return (
            f"{self.label}: predicted {self.predicted:.5g}, measured {self.measured:.5g}{err}, "
            f"ratio {self.ratio:.4f}"
        )


def compare(label: str, predicted, measured, sem=None, *, show: bool = True) -> Comparison:
    """Record and print one prediction/measurement pair. ``predicted`` must be non-zero."""
    predicted = check.real("predicted", predicted)
    measured = check.real("measured", measured)
    if predicted == 0:
        raise ValueError(f"predicted is 0 for {label!r}: a ratio needs a non-zero prediction.")
    sem = None if sem is None else check.real("sem", sem, nonnegative=True)
    c = Comparison(label, predicted, measured, sem)
    if show:
        print(c)
    return c


def compare_table(labels, predicted, measured, sem=None, *, header: str = "", show: bool = True) -> list[Comparison]:
    """Compare many pairs at once and print them as a table; returns one :class:`Comparison` each."""
    predicted = check.tensor("predicted", predicted, ndim=1).double()
    measured = check.tensor("measured", measured, ndim=1).double()
    labels = list(labels)
    if not (len(labels) == predicted.numel() == measured.numel()):
        raise ValueError(
            f"labels, predicted and measured must have the same length; got {len(labels)}, "
            f"{predicted.numel()} and {measured.numel()}."
        )
    if sem is not None:
        sem = check.tensor("sem", sem, ndim=1).double()
    rows = [
        compare(str(lab), float(p), float(m), None if sem is None else float(s), show=False)
        for lab, p, m, s in zip(labels, predicted, measured, sem if sem is not None else [None] * len(labels))
    ]
    if show:
        width = max(len(r.label) for r in rows)
        if header:
            print(header)
        print(f"{'':{width}}  {'predicted':>11}  {'measured':>11}  {'± s.e.':>9}  {'ratio':>7}")
        for r in rows:
            e = f"{r.sem:9.2g}" if r.sem is not None else f"{'':9}"
            print(f"{r.label:{width}}  {r.predicted:11.5g}  {r.measured:11.5g}  {e}  {r.ratio:7.4f}")
    return rows


def glue(name: str, value, display: bool = False):
    """Glue ``value`` into the book under ``name`` (``myst_nb.glue``); a no-op outside the book build.

    In Colab or plain Jupyter, where MyST-NB is not installed, the value is just returned.
    """
    if isinstance(value, torch.Tensor):
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    _glue(name, value, display=display)
    return value  # returned in both cases, so a cell can glue and use the value in one line
