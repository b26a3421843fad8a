"""Analytic loss landscapes, evaluated on a whole batch of replicas at once.

A landscape maps parameters of shape ``(..., D)`` (any leading replica axes) to a loss of
shape ``(...)``. Each one gives its gradient and Hessian in closed form, so the dynamics and
the tests never need automatic differentiation for them; ``loss`` is also written with plain
tensor operations, so ``torch.func.grad`` and ``torch.func.hessian`` work on it and the tests
compare the two.
"""

from __future__ import annotations

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
