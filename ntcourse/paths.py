r"""Paths between two solutions in parameter space, and mode connectivity (Garipov et al. 2018).

A path is a Bézier curve :math:`\phi:[0,1]\to\mathbb R^D` through flat parameter vectors of shape
``(D,)`` (build ``loss_fn`` for a network with :func:`ntcourse.curvature.flat_loss`):

* :func:`linear`: the segment :math:`\phi(s)=(1-s)a+sb`.
* :func:`bezier`: the quadratic Bézier :math:`\phi(s)=(1-s)^2a+2s(1-s)c+s^2b` with control point ``c``.
* :func:`train_control_point`: Garipov's training of ``c`` so that the whole curve has low loss,
  minimising :math:`\E_{s\sim U(0,1)}L(\phi_c(s))`, with an early stop once the path is as good as its ends.
* :func:`along`: any function of the parameters (loss, Hessian trace, top eigenvalue...) along the path.
* :func:`project`: the path parameter :math:`s^*` of the point of the path closest to ``theta``,
  for one point or a batch of replicas.
* :meth:`Bezier.arc_length`: the length :math:`\int_0^1\lVert\phi'(s)\rVert\,ds` of the path.

Points are evaluated in the Bernstein form :math:`\phi(s)=\sum_k\binom Kk s^k(1-s)^{K-k}P_k`: at
``s = 0`` the weights are exactly ``(1, 0, ..., 0)`` and at ``s = 1`` exactly ``(0, ..., 0, 1)``, so the
endpoints come out bit for bit (no cancellation as in ``a + s (b - a)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.func import vmap

from . import _validate as check
from .dynamics import DivergenceError
from .runtime import step_range

LossFn = Callable[[torch.Tensor], torch.Tensor]
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True, eq=False)
class Bezier:
    r"""A Bézier curve of degree ``K`` in parameter space, :math:`s\in[0,1]`.

    Build it with :func:`linear` (``K = 1``) or :func:`bezier` (``K = 2``), which check the arguments.

    Attributes:
        control: ``(K+1, D)`` control points; ``control[0]`` and ``control[-1]`` are the endpoints
            (the curve passes through them), the others pull the curve without lying on it.
    """

    control: torch.Tensor

    @property
    def degree(self) -> int:
        """The polynomial degree ``K`` (1 for a segment, 2 for a quadratic Bézier)."""
        return self.control.shape[0] - 1

    @property
    def dim(self) -> int:
        """Number of parameters ``D``."""
        return self.control.shape[1]

    @property
    def start(self) -> torch.Tensor:
        """``phi(0)``, shape ``(D,)``."""
        return self.control[0]

    @property
    def end(self) -> torch.Tensor:
        """``phi(1)``, shape ``(D,)``."""
        return self.control[-1]

    def points(self, s) -> torch.Tensor:
        """The points ``phi(s)``: ``(S, D)`` for ``s`` of shape ``(S,)``, ``(D,)`` for a scalar ``s`` in ``[0, 1]``."""
        return _evaluate(self.control, self._s(s))

    __call__ = points

    def tangents(self, s) -> torch.Tensor:
        """The derivatives ``dphi/ds`` (units: parameter per unit of ``s``), same shapes as :meth:`points`."""
        return self.derivative().points(s)

    def derivative(self) -> Bezier:
        """The hodograph ``phi'``: a Bézier of degree ``K - 1`` with control points ``K (P_{k+1} - P_k)``.

        The derivative of a degree-0 (constant) curve is the zero curve.
        """
        if self.degree == 0:
            return Bezier(control=torch.zeros_like(self.control))
        return Bezier(control=self.degree * (self.control[1:] - self.control[:-1]))

    def arc_length(self, n_intervals: int = 32, order: int = 8) -> float:
        r"""The length :math:`\int_0^1\lVert\phi'(s)\rVert\,ds`, in parameter units.

        Composite Gauss-Legendre quadrature: ``n_intervals`` equal pieces of ``[0, 1]`` with ``order``
        nodes each. Exact (up to rounding) for a segment; for a quadratic Bézier the integrand is
        the square root of a quadratic in ``s`` and the default is accurate to about 1e-12 unless the
        tangent nearly vanishes somewhere.
        """
        n_intervals = check.integer("n_intervals", n_intervals, minimum=1)
        order = check.integer("order", order, minimum=1)
        x, w = np.polynomial.legendre.leggauss(order)
        left = np.arange(n_intervals)[:, None] / n_intervals
        nodes = (left + (x[None, :] + 1) / (2 * n_intervals)).ravel()
        weights = np.tile(w / (2 * n_intervals), n_intervals)
        c = self.control
        speed = self.tangents(torch.as_tensor(nodes, dtype=c.dtype, device=c.device)).double().norm(dim=1)
        return float((speed * torch.as_tensor(weights, dtype=torch.float64, device=c.device)).sum())

    def _s(self, s) -> torch.Tensor:
        s = check.tensor("s", s, ndim=(0, 1), dtype=self.control.dtype).to(self.control.device)
        if s.numel() and ((s < 0) | (s > 1)).any():
            bad = s[(s < 0) | (s > 1)]
            raise ValueError(f"s must lie in [0, 1]; got values down to {s.min().item():.6g} and up to "
                             f"{s.max().item():.6g} ({bad.numel()} outside).")
        return s


def _evaluate(control: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Bernstein sum, term by term in a fixed order; no argument checks (used inside vmap and autograd)."""
    k_max = control.shape[0] - 1
    out = None
    for k in range(k_max + 1):
        w = math.comb(k_max, k) * s**k * (1 - s) ** (k_max - k)    # s**0 == 1 even at s == 0
        term = w[..., None] * control[k]
        out = term if out is None else out + term
    return out


def _endpoints(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    a = check.tensor("a", a, ndim=1)
    b = check.tensor("b", b, ndim=1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (D,); got a of shape {tuple(a.shape)} and b of shape "
                         f"{tuple(b.shape)}.")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(device=a.device, dtype=dtype)


def linear(a, b) -> Bezier:
    """The segment from ``a`` to ``b`` (both ``(D,)``): ``phi(s) = (1 - s) a + s b``."""
    a, b = _endpoints(a, b)
    return Bezier(control=torch.stack([a, b]))


def bezier(a, c, b) -> Bezier:
    """The quadratic Bézier ``phi(s) = (1-s)^2 a + 2 s (1-s) c + s^2 b`` from ``a`` to ``b`` (all ``(D,)``).

    ``phi(1/2) = (a + 2c + b) / 4``; with ``c = (a + b) / 2`` the curve is the segment, traversed at constant speed.
    """
    a, b = _endpoints(a, b)
    c = check.tensor("c", c, ndim=1, dtype=a.dtype).to(a.device)
    check.same_trailing_dim("c", c, a.numel(), "a")
    return Bezier(control=torch.stack([a, c, b]))


def _path(path) -> Bezier:
    if not isinstance(path, Bezier):
        raise TypeError(f"path must be a Bezier (build it with paths.linear or paths.bezier); got {type(path).__name__}.")
    return path


def _grid(n: int, like: torch.Tensor) -> torch.Tensor:
    """``n`` evenly spaced values from exactly 0 to exactly 1."""
    return torch.arange(n, dtype=like.dtype, device=like.device) / (n - 1)


def _losses(loss_fn: LossFn, points: torch.Tensor, vectorize: bool) -> torch.Tensor:
    """``loss_fn`` at each row of ``points`` ``(S, D)`` -> ``(S,)``."""
    if vectorize:
        return vmap(loss_fn)(points).reshape(points.shape[0])
    return torch.stack([torch.as_tensor(loss_fn(p)).reshape(()) for p in points])


# --------------------------------------------------------------------------- training the control point


@dataclass(frozen=True, eq=False)
class BezierFit:
    """What :func:`train_control_point` returns.

    Attributes:
        path: the trained quadratic :class:`Bezier` (``path.control[1]`` is the control point ``c``).
        steps: number of optimiser steps taken (``< n_steps`` when the run stopped early).
        stopped: whether the stop criterion ``max loss on the path <= stop_at`` was met.
        check_steps: ``(K,)`` the steps at which the path was checked (0, every ``check_every``, and the last).
        max_loss: ``(K,)`` float64, the largest loss on the check grid at those steps.
        mean_loss: ``(K,)`` float64, the mean loss on the check grid (the training objective, on a grid).
    """

    path: Bezier
    steps: int
    stopped: bool
    check_steps: torch.Tensor
    max_loss: torch.Tensor
    mean_loss: torch.Tensor


def train_control_point(
    loss_fn: LossFn,
    a,
    b,
    *,
    c=None,
    n_steps: int = 1000,
    lr: float = 1e-2,
    n_samples: int = 8,
    optimizer: str = "adam",
    generator: torch.Generator | None = None,
    step_loss: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    stop_at: float | None = None,
    check_every: int = 50,
    n_check: int = 33,
    vectorize: bool = True,
    progress: bool | None = None,
) -> BezierFit:
    r"""Train the control point ``c`` of a quadratic Bézier from ``a`` to ``b`` (Garipov et al. 2018).

    Minimises :math:`\E_{s\sim U(0,1)}L(\phi_c(s))` over ``c`` with the endpoints fixed. Each step draws
    ``n_samples`` values of ``s``, one uniformly in each of ``n_samples`` equal pieces of ``[0, 1]``
    (stratified: unbiased, with less variance than independent draws), evaluates the loss at the
    ``n_samples`` points at once with ``torch.func.vmap``, and takes one optimiser step on the mean.

    Args:
        loss_fn: ``(D,) -> scalar`` full-batch loss (e.g. from :func:`ntcourse.curvature.flat_loss`). It
            is the training objective, unless ``step_loss`` is given, and always the one checked.
        a, b: ``(D,)`` the endpoints (two trained solutions); they are not changed.
        c: ``(D,)`` initial control point; default ``(a + b) / 2``, for which the curve is the segment.
        n_steps: the most optimiser steps to take (``>= 0``).
        lr: learning rate (``> 0``).
        n_samples: values of ``s`` per step (``>= 1``).
        optimizer: ``"adam"`` (default: the step size is set by ``lr`` in parameter units whatever the
            scale of the loss, which suits paths between networks) or ``"sgd"`` (plain gradient descent
            on the sampled objective).
        generator: for the draws of ``s`` (reproducibility).
        step_loss: optional ``(theta, step) -> scalar`` objective for training step ``step``, e.g. the
            loss on minibatch ``step`` (use the ``int`` to pick it: it is the same for all values of ``s``
            of a step, so vmap never sees random indexing). Default: ``loss_fn``, full batch.
        stop_at: stop as soon as the largest loss on the check grid is ``<= stop_at``; a natural value is a
            little above the endpoint losses, e.g. ``1.05 * max(loss_fn(a), loss_fn(b))``. ``None``: run all steps.
        check_every: check the path (and record its max and mean loss) every ``check_every`` steps, at
            step 0 and after the last step.
        n_check: points of the fixed check grid ``s = 0, 1/(n_check-1), ..., 1`` (``>= 2``).
        vectorize: evaluate the ``s`` values with ``vmap`` (default). Set ``False`` for a ``loss_fn`` that
            vmap cannot trace (one that calls ``.item()``, branches on values, or writes in place): the
            points are then evaluated one by one, with identical results, more slowly.
        progress: tqdm bar (default: at full scale only; see :func:`ntcourse.runtime.step_range`).

    Returns:
        A :class:`BezierFit` with the trained path, the steps taken, whether it stopped early and the
        recorded max / mean path loss.

    Raises:
        DivergenceError: when the sampled loss or the control point becomes inf or nan; the
            message names the step and ``lr``.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function of a flat parameter vector (D,); got {type(loss_fn).__name__}.")
    if step_loss is not None and not callable(step_loss):
        raise TypeError(f"step_loss must be a function (theta, step) -> scalar or None; got {type(step_loss).__name__}.")
    a, b = _endpoints(a, b)
    c0 = (a + b) / 2 if c is None else check.tensor("c", c, ndim=1, dtype=a.dtype).to(a.device)
    check.same_trailing_dim("c", c0, a.numel(), "a")
    n_steps = check.integer("n_steps", n_steps, minimum=0)
    lr = check.real("lr", lr, positive=True)
    n_samples = check.integer("n_samples", n_samples, minimum=1)
    optimizer = check.choice("optimizer", optimizer, OPTIMIZERS)
    if stop_at is not None:
        stop_at = check.real("stop_at", stop_at)
    check_every = check.integer("check_every", check_every, minimum=1)
    n_check = check.integer("n_check", n_check, minimum=2)

    a, b = a.detach(), b.detach()
    c = c0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([c], lr=lr) if optimizer == "adam" else torch.optim.SGD([c], lr=lr)
    grid = _grid(n_check, a)
    strata = torch.arange(n_samples, dtype=a.dtype, device=a.device)
    checks: list[int] = []
    maxima: list[float] = []
    means: list[float] = []

    def check_path(t: int) -> bool:
        with torch.no_grad():
            values = _losses(loss_fn, _evaluate(torch.stack([a, c, b]), grid), vectorize).double()
        if not torch.isfinite(values).all():
            raise DivergenceError(f"control-point training diverged at step {t} (lr={lr:.6g}): the loss on the path "
                                  "became inf or nan. Lower lr.")
        checks.append(t)
        maxima.append(float(values.max()))
        means.append(float(values.mean()))
        return stop_at is not None and maxima[-1] <= stop_at

    stopped, steps = False, 0
    bar = step_range(n_steps, progress, "bezier")
    for t in bar:
        if t % check_every == 0 and check_path(t):
            stopped = True
            break
        s = (strata + torch.rand(n_samples, generator=generator, dtype=a.dtype, device=a.device)) / n_samples
        points = _evaluate(torch.stack([a, c, b]), s)
        if step_loss is None:
            objective = _losses(loss_fn, points, vectorize).mean()
        else:
            objective = _losses(lambda th: step_loss(th, t), points, vectorize).mean()
        if not torch.isfinite(objective):
            raise DivergenceError(f"control-point training diverged at step {t} (lr={lr:.6g}): the sampled path loss "
                                  f"is {objective.item()}. Lower lr.")
        opt.zero_grad(set_to_none=True)
        objective.backward()
        opt.step()
        steps = t + 1
        if not torch.isfinite(c).all():
            raise DivergenceError(f"control-point training diverged at step {t} (lr={lr:.6g}): the control point "
                                  "became inf or nan. Lower lr.")
    if hasattr(bar, "close"):
        bar.close()
    if not stopped:
        stopped = check_path(steps)
    return BezierFit(
        path=Bezier(control=torch.stack([a, c.detach().clone(), b])),
        steps=steps,
        stopped=stopped,
        check_steps=torch.tensor(checks),
        max_loss=torch.tensor(maxima, dtype=torch.float64),
        mean_loss=torch.tensor(means, dtype=torch.float64),
    )


# --------------------------------------------------------------------------- measuring along a path


def along(path: Bezier, fn: Callable[[torch.Tensor], object], n_points: int = 33, *, s=None,
          progress: bool | None = None) -> tuple[torch.Tensor, object]:
    """Evaluate ``fn(theta)`` at points of the path: returns ``(s, values)``.

    ``s`` defaults to ``n_points`` evenly spaced values from exactly 0 to exactly 1; pass ``s`` ``(S,)``
    to choose them. ``fn`` is called once per point (no vmap, so it may be anything: a loss, a
    ``lambda th: curvature.hutchinson_trace(loss_fn, th, 50, generator=g).mean``, the top eigenvalue from
    ``curvature.lanczos``...). Values that are numbers or tensors of one common shape are stacked into a
    tensor ``(S, ...)``; anything else is returned as a list.
    """
    path = _path(path)
    if not callable(fn):
        raise TypeError(f"fn must be a function of a flat parameter vector (D,); got {type(fn).__name__}.")
    if s is None:
        n_points = check.integer("n_points", n_points, minimum=2)
        s = _grid(n_points, path.control)
    else:
        s = path._s(s).reshape(-1)
    points = path.points(s)
    values = [fn(points[i]) for i in step_range(s.numel(), progress, "along path")]
    if all(isinstance(v, torch.Tensor) or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
        tensors = [torch.as_tensor(v) for v in values]
        if len({t.shape for t in tensors}) <= 1:
            return s, torch.stack(tensors) if tensors else torch.empty(0)
    return s, values


def project(path: Bezier, theta, n_grid: int = 257) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The path parameter :math:`s^*=\arg\min_{s\in[0,1]}\lVert\phi(s)-\theta\rVert` and that distance.

    ``theta`` is one point ``(D,)`` (returns two scalars) or a batch of replicas ``(R, D)`` (returns two
    ``(R,)`` tensors), all handled at once. The squared distance is first scanned on ``n_grid`` evenly
    spaced values of ``s``; then, inside the grid interval on either side of the best value, a safeguarded
    Newton iteration (bisection on the sign of the derivative when a Newton step would leave the interval)
    solves :math:`(\phi(s)-\theta)\cdot\phi'(s)=0` to about 1e-12 in ``s``. If the grid misses the global
    minimum (a path that comes back within a grid spacing of itself), so will the result: raise ``n_grid``.
    """
    path = _path(path)
    n_grid = check.integer("n_grid", n_grid, minimum=3)
    theta = check.tensor("theta", theta, ndim=(1, 2), dtype=path.control.dtype)
    check.same_trailing_dim("theta", theta, path.dim, "the path")
    single = theta.ndim == 1
    x = theta.reshape(-1, path.dim).to(path.control)
    ctrl = path.control
    d1, d2 = path.derivative(), path.derivative().derivative()

    # Grid scan. Distances by |x - p|^2 = |x|^2 - 2 x.p + |p|^2 (memory R x G, not R x G x D), centred on the
    # control points' mean so the cancellation is relative to the path's size, not to |theta|.
    grid = _grid(n_grid, ctrl)
    centre = ctrl.mean(0)
    xc, pc = x - centre, _evaluate(ctrl, grid) - centre
    sq = (xc * xc).sum(1)[:, None] - 2 * xc @ pc.T + (pc * pc).sum(1)[None, :]
    i = sq.argmin(1)
    s_grid = grid[i]
    lo, hi = grid[(i - 1).clamp(min=0)], grid[(i + 1).clamp(max=n_grid - 1)]

    s = s_grid.clone()
    tol = 4 * torch.finfo(ctrl.dtype).eps
    for _ in range(80):
        e = _evaluate(ctrl, s) - x
        t1 = _evaluate(d1.control, s)
        g = (e * t1).sum(1)                                       # half the derivative of the squared distance
        h = (t1 * t1).sum(1) + (e * _evaluate(d2.control, s)).sum(1)
        hi = torch.where(g > 0, s, hi)
        lo = torch.where(g < 0, s, lo)
        newton = s - g / torch.where(h > 0, h, torch.ones_like(h))
        ok = (h > 0) & (newton >= lo) & (newton <= hi)
        new = torch.where(g == 0, s, torch.where(ok, newton, (lo + hi) / 2))
        done = bool(((new - s).abs() <= tol).all())
        s = new
        if done:
            break
    s = s.clamp(0, 1)
    dist = (_evaluate(ctrl, s) - x).norm(dim=1)
    dist_grid = (_evaluate(ctrl, s_grid) - x).norm(dim=1)
    better = dist_grid < dist                                   # the refinement never makes things worse
    s, dist = torch.where(better, s_grid, s), torch.where(better, dist_grid, dist)
    return (s[0], dist[0]) if single else (s, dist)
