"""Analytic loss landscapes, evaluated on a whole batch of replicas at once.

A landscape maps parameters of shape ``(..., D)`` (any leading replica axes) to a loss of
shape ``(...)``. Each one gives its gradient and Hessian in closed form, so the dynamics and
the tests never need automatic differentiation for them; ``loss`` is also written with plain
tensor operations, so ``torch.func.grad`` and ``torch.func.hessian`` work on it and the tests
compare the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import _validate as check


@dataclass(frozen=True, eq=False)
class Quadratic:
    r"""The quadratic loss :math:`L(\theta)=\tfrac12(\theta-\theta^*)^\top A(\theta-\theta^*)`.

    Build it with :func:`quadratic` or :func:`diagonal_quadratic`, which check the arguments.

    Attributes:
        hessian: ``(D, D)`` symmetric positive semi-definite matrix ``A`` (units: loss / parameter²).
        center: ``(D,)`` the minimiser :math:`\theta^*`.
    """

    hessian: torch.Tensor
    center: torch.Tensor

    @property
    def dim(self) -> int:
        """Number of parameters ``D``."""
        return self.hessian.shape[0]

    def _delta(self, theta: torch.Tensor) -> torch.Tensor:
        check.same_trailing_dim("theta", theta, self.dim, "the landscape")
        return theta - self.center.to(theta)

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """Loss, shape ``theta.shape[:-1]``."""
        d = self._delta(theta)
        return 0.5 * ((d @ self.hessian.to(d)) * d).sum(-1)

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        """Gradient ``A (theta - center)``, same shape as ``theta``."""
        d = self._delta(theta)
        return d @ self.hessian.to(d)  # A is symmetric, so d A = (A d^T)^T

    def hessian_at(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        """Hessian ``A``, shape ``(D, D)`` (the same at every point)."""
        if theta is not None:
            check.same_trailing_dim("theta", theta, self.dim, "the landscape")
            return self.hessian.to(theta)
        return self.hessian

    def eigh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eigenvalues (ascending, ``(D,)``) and eigenvectors (columns, ``(D, D)``) of the Hessian."""
        return torch.linalg.eigh(self.hessian)

    def max_stable_lr(self) -> float:
        """The largest learning rate for which gradient descent converges: ``2 / lambda_max``."""
        lam_max = torch.linalg.eigvalsh(self.hessian).max().item()
        return float("inf") if lam_max <= 0 else 2.0 / lam_max


def quadratic(hessian, center=None, *, dtype: torch.dtype | None = None) -> Quadratic:
    """Build a :class:`Quadratic` with Hessian ``hessian`` ``(D, D)``, minimum at ``center`` ``(D,)`` (default 0).

    Raises ``ValueError`` if the Hessian is not square, symmetric and positive semi-definite,
    or if ``center`` does not have length ``D``.
    """
    h = check.psd_matrix("hessian", hessian)
    if dtype is not None:
        h = h.to(dtype)
    if center is None:
        c = torch.zeros(h.shape[0], dtype=h.dtype, device=h.device)
    else:
        c = check.tensor("center", center, ndim=1).to(h)
        check.same_trailing_dim("center", c, h.shape[0], "the Hessian")
    return Quadratic(hessian=h, center=c)


def diagonal_quadratic(curvatures, center=None, *, dtype: torch.dtype | None = None) -> Quadratic:
    """Independent valleys ``L = sum_i a_i (theta_i - c_i)^2 / 2`` with curvatures ``a_i >= 0`` ``(D,)``."""
    a = check.tensor("curvatures", curvatures, ndim=1)
    if (a < 0).any():
        raise ValueError(
            f"curvatures must be >= 0 (a positive semi-definite Hessian); the smallest is {a.min().item():.3g}."
        )
    return quadratic(torch.diag(a), center, dtype=dtype)


class _AlongAndAcross:
    """Parameters ``theta = (y, x_1, ..., x_n)``: the coordinate along the valley first, then ``n`` across it."""

    @property
    def dim(self) -> int:
        """Number of parameters ``D = n + 1``."""
        return self.n + 1  # type: ignore[attr-defined]

    def _split(self, theta: torch.Tensor):
        check.same_trailing_dim("theta", theta, self.dim, "the landscape")
        return theta[..., 0], theta[..., 1:]


@dataclass(frozen=True, eq=False)
class CurvedValley(_AlongAndAcross):
    r"""A flat direction :math:`y` with ``n`` transverse directions whose curvature depends on it.

    :math:`V(\theta)=\tfrac12\,g(y)\,\lVert x\rVert^2` with :math:`\theta=(y,x_1,\dots,x_n)`
    (coordinate 0 is :math:`y`). The loss is zero along :math:`x=0` for every :math:`y`, so any
    force along :math:`y` felt by noisy dynamics is entropic. Build it with :func:`curved_valley`,
    :func:`parabolic_valley` or :func:`flat_path`.

    Attributes:
        n: number of transverse directions.
        g: function ``y -> g(y) > 0`` (transverse curvature), on tensors of any shape.
        dg: its derivative ``y -> g'(y)``.
        name: a short description used in plots.
    """

    n: int
    g: object
    dg: object
    name: str = "curved valley"

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """Loss, shape ``theta.shape[:-1]``."""
        y, x = self._split(theta)
        return 0.5 * self.g(y) * (x * x).sum(-1)

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        """Gradient ``(g'(y) |x|^2 / 2, g(y) x)``, same shape as ``theta``."""
        y, x = self._split(theta)
        dy = 0.5 * self.dg(y) * (x * x).sum(-1)
        return torch.cat([dy[..., None], self.g(y)[..., None] * x], dim=-1)

    def log_det_transverse(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`\ln\det H_\perp(y) = n\ln g(y)`."""
        return self.n * torch.log(self.g(y))


def curved_valley(n: int, g, dg, name: str = "curved valley") -> CurvedValley:
    """A :class:`CurvedValley` with ``n >= 1`` transverse directions and curvature profile ``g`` (derivative ``dg``).

    ``g`` and ``dg`` take and return tensors; ``g`` must be positive where the dynamics goes.
    """
    n = check.integer("n", n, minimum=1)
    for arg, fn in (("g", g), ("dg", dg)):
        if not callable(fn):
            raise TypeError(f"{arg} must be a function of y (a tensor); got {type(fn).__name__}.")
    probe = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    if not (g(probe) > 0).all():
        raise ValueError(f"g must be positive (a transverse curvature); g({probe.tolist()}) = {g(probe).tolist()}.")
    return CurvedValley(n=n, g=g, dg=dg, name=name)


def parabolic_valley(n: int, a: float = 3.0) -> CurvedValley:
    """``g(y) = 1 + a y^2`` (``a >= 0``): the transverse walls steepen away from ``y = 0``."""
    a = check.real("a", a, nonnegative=True)
    return curved_valley(n, lambda y: 1.0 + a * y * y, lambda y: 2.0 * a * y, name=f"g = 1 + {a:g} y²")


def flat_path(n: int, barrier: float) -> CurvedValley:
    """``g(y) = 1 + barrier * sin^2(pi y)`` (``barrier >= 0``): a flat path whose walls narrow mid-way.

    The loss is zero along the whole path; the narrowing at ``y = 1/2`` is a purely entropic barrier.
    """
    b = check.real("barrier", barrier, nonnegative=True)
    return curved_valley(
        n,
        lambda y: 1.0 + b * torch.sin(math.pi * y) ** 2,
        lambda y: b * math.pi * torch.sin(2 * math.pi * y),
        name=f"g = 1 + {b:g} sin²(πy)",
    )


@dataclass(frozen=True, eq=False)
class RiverValley(_AlongAndAcross):
    r"""A river :math:`y` running along the floor of ``n`` valleys whose widths change along it.

    :math:`\ell(\theta)=c(y)+\tfrac12\sum_{k=1}^n a_k(y)\,x_k^2` with :math:`\theta=(y,x_1,\dots,x_n)`
    (coordinate 0 is :math:`y`, as in :class:`CurvedValley`). The first term is the *river* loss
    (what training pays down by moving along :math:`y`), the second the *valley* loss (what the
    noise keeps in the transverse directions): :meth:`river_loss` and :meth:`valley_loss` return
    the two parts, and their sum is :meth:`loss`. Build it with :func:`river_valley` or
    :func:`exponential_river`.

    Attributes:
        n: number of valley (transverse) directions.
        a: function ``y -> a(y) > 0`` of shape ``y.shape + (n,)``: the valley curvatures.
        da: its derivative ``y -> a'(y)``, same shape.
        c: function ``y -> c(y)`` of shape ``y.shape``: the loss along the river floor.
        dc: its derivative ``y -> c'(y)``.
        name: a short description used in plots.
    """

    n: int
    a: object
    da: object
    c: object
    dc: object
    name: str = "river valley"

    def curvatures(self, y: torch.Tensor) -> torch.Tensor:
        """Valley curvatures :math:`a_k(y)`, shape ``y.shape + (n,)``."""
        return self.a(y)

    def river_loss(self, theta: torch.Tensor) -> torch.Tensor:
        """The river part :math:`c(y)`, shape ``theta.shape[:-1]``."""
        y, _ = self._split(theta)
        return self.c(y)

    def valley_energy(self, theta: torch.Tensor) -> torch.Tensor:
        r"""The valley loss of each direction, :math:`\tfrac12 a_k(y)x_k^2`, shape ``theta.shape[:-1] + (n,)``."""
        y, x = self._split(theta)
        return 0.5 * self.a(y) * x * x

    def valley_loss(self, theta: torch.Tensor) -> torch.Tensor:
        r"""The valley part :math:`\tfrac12\sum_k a_k(y)x_k^2`, shape ``theta.shape[:-1]``."""
        return self.valley_energy(theta).sum(-1)

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """Loss ``river_loss + valley_loss``, shape ``theta.shape[:-1]``."""
        y, x = self._split(theta)
        return self.c(y) + 0.5 * (self.a(y) * x * x).sum(-1)

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        r"""Gradient :math:`(c'(y)+\tfrac12\sum_k a_k'(y)x_k^2,\ a_k(y)x_k)`, same shape as ``theta``."""
        y, x = self._split(theta)
        dy = self.dc(y) + 0.5 * (self.da(y) * x * x).sum(-1)
        return torch.cat([dy[..., None], self.a(y) * x], dim=-1)

    def log_det_transverse(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`\ln\det H_\perp(y)=\sum_k\ln a_k(y)`, shape ``y.shape``."""
        return torch.log(self.a(y)).sum(-1)


def river_valley(n: int, a, da, c=None, dc=None, name: str = "river valley") -> RiverValley:
    """A :class:`RiverValley` with ``n >= 1`` valley directions, curvatures ``a`` (derivative ``da``) and river ``c`` (``dc``).

    ``a`` and ``da`` map a tensor ``y`` to shape ``y.shape + (n,)``; ``c`` and ``dc`` map it to
    ``y.shape``. Without ``c`` (and ``dc``) the river floor is flat, ``c = 0``: any drift along
    ``y`` is then entropic. ``a`` must be positive where the dynamics goes (it is probed on
    ``[-1, 1]``).
    """
    n = check.integer("n", n, minimum=1)
    if (c is None) != (dc is None):
        raise ValueError("give both c and dc (the river loss and its derivative), or neither for a flat river c = 0.")
    if c is None:
        c, dc = torch.zeros_like, torch.zeros_like
    for arg, fn in (("a", a), ("da", da), ("c", c), ("dc", dc)):
        if not callable(fn):
            raise TypeError(f"{arg} must be a function of y (a tensor); got {type(fn).__name__}.")
    probe = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    for arg, fn, shape in (("a", a, (5, n)), ("da", da, (5, n)), ("c", c, (5,)), ("dc", dc, (5,))):
        out = fn(probe)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"{arg}(y) must return a tensor of shape {'y.shape + (n,)' if len(shape) == 2 else 'y.shape'}: "
                f"for y of shape (5,) and n = {n}, expected {shape}, got {got}."
            )
    values = a(probe)
    if not (values > 0).all():
        raise ValueError(
            f"a must be positive (valley curvatures); on y in [-1, 1] its smallest value is {values.min().item():.3g}."
        )
    return RiverValley(n=n, a=a, da=da, c=c, dc=dc, name=name)


def exponential_river(curvatures, rate: float = 1.0, slope: float = 0.0) -> RiverValley:
    r"""Valleys that widen exponentially downstream: :math:`a_k(y)=a_k\,e^{-\text{rate}\cdot y}`, :math:`c(y)=-\text{slope}\cdot y`.

    Args:
        curvatures: ``(n,)`` curvatures :math:`a_k > 0` at :math:`y=0` (or a single number, ``n = 1``).
        rate: :math:`k`, the e-folding rate of the curvatures along ``y`` (``rate > 0``: valleys
            flatten towards larger ``y``; ``0``: valleys of constant width).
        slope: the river's descent per unit ``y`` (``>= 0``); ``0`` is a flat river.

    Here :math:`\partial_y\ell=-\text{slope}-\text{rate}\cdot\tfrac12\sum_ka_k(y)x_k^2`: the pull
    along the river is the slope plus ``rate`` times the valley loss.
    """
    a0 = check.tensor("curvatures", curvatures, ndim=(0, 1), dtype=torch.float64).reshape(-1)
    if a0.numel() < 1 or (a0 <= 0).any():
        raise ValueError(f"curvatures must be > 0 (valley curvatures at y = 0); got {a0.tolist()}.")
    rate = check.real("rate", rate, nonnegative=True)
    slope = check.real("slope", slope, nonnegative=True)

    def a(y):
        return a0.to(y) * torch.exp(-rate * y)[..., None]

    return river_valley(
        a0.numel(), a, lambda y: -rate * a(y), lambda y: -slope * y, lambda y: torch.full_like(y, -slope),
        name=f"a(y) = a0 exp(-{rate:g} y), c(y) = -{slope:g} y",
    )
