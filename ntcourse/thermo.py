r"""Thermodynamic estimators and exact stationary predictions for linear dynamics.

* :func:`discrete_lyapunov` / :func:`continuous_lyapunov`: the stationary covariance of SGD
  on a quadratic, exactly (discrete time) and in the small-step limit.
* :func:`replica_estimate`: mean and standard error of a stationary average measured over
  independent replicas (each replica's time average is one independent sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import _validate as check


def _quadratic_and_noise(hessian, covariance, lr):
    a = check.psd_matrix("hessian", hessian).double()
    c = check.psd_matrix("covariance", covariance).double()
    if c.shape != a.shape:
        raise ValueError(
            f"covariance has shape {tuple(c.shape)} but hessian has shape {tuple(a.shape)}; they must match."
        )
    lr = check.real("lr", lr, positive=True)
    return a, c, lr


def discrete_lyapunov(hessian, covariance, lr: float) -> torch.Tensor:
    r"""Stationary covariance :math:`\Sigma` of :math:`\theta_{t+1}=(I-\eta A)\theta_t-\eta\xi_t`, :math:`\Cov\xi=C`.

    Solves :math:`\Sigma=(I-\eta A)\Sigma(I-\eta A)^\top+\eta^2 C` exactly, in the eigenbasis of
    ``A``: :math:`\tilde\Sigma_{ij}=\eta^2\tilde C_{ij}/(1-(1-\eta\lambda_i)(1-\eta\lambda_j))`.

    Args:
        hessian: ``(D, D)`` symmetric PSD matrix ``A``.
        covariance: ``(D, D)`` noise covariance ``C`` of one gradient estimate.
        lr: learning rate :math:`\eta > 0`.

    Returns:
        ``(D, D)`` float64 covariance.

    Raises:
        ValueError: if some eigenvalue has :math:`\eta\lambda \notin (0, 2)` in a direction the
            noise reaches (no stationary state: the variance grows without bound).
    """
    a, c, lr = _quadratic_and_noise(hessian, covariance, lr)
    lam, v = torch.linalg.eigh(a)
    m = 1.0 - lr * lam
    denom = 1.0 - m[:, None] * m[None, :]
    unstable = (lam <= 0) | (lr * lam >= 2)
    if unstable.any():
        raise ValueError(
            f"lr={lr:g} has no stationary state for this hessian: eigenvalues {lam[unstable].tolist()} need "
            f"0 < lr * eigenvalue < 2 (so lr < {2 / lam.max().item():.4g} and every eigenvalue > 0)."
        )
    c_eig = v.T @ c @ v
    return v @ (lr**2 * c_eig / denom) @ v.T


def continuous_lyapunov(hessian, covariance, lr: float) -> torch.Tensor:
    r"""Small-step stationary covariance: the solution of :math:`A\Sigma+\Sigma A=\eta C` (float64).

    Requires ``hessian`` positive definite.
    """
    a, c, lr = _quadratic_and_noise(hessian, covariance, lr)
    lam, v = torch.linalg.eigh(a)
    if (lam <= 0).any():
        raise ValueError(f"hessian must be positive definite for a stationary state; smallest eigenvalue {lam.min():.3g}.")
    c_eig = v.T @ c @ v
    return v @ (lr * c_eig / (lam[:, None] + lam[None, :])) @ v.T


@dataclass(frozen=True)
class Estimate:
    """A measured mean with its standard error (one standard deviation of the mean)."""

    mean: float
    sem: float

    def __float__(self) -> float:
        return self.mean

    def __format__(self, spec: str) -> str:
        spec = spec or ".4g"
        return f"{self.mean:{spec}} ± {self.sem:{spec}}"


def replica_estimate(per_replica) -> Estimate:
    """Mean and standard error from one value per independent replica, shape ``(R,)``.

    Pass each replica's *time average*: the replicas are independent, so their spread gives an
    honest error bar even though successive steps of one replica are correlated.
    """
    x = check.tensor("per_replica", per_replica, ndim=1).double()
    n = x.numel()
    if n < 2:
        raise ValueError(f"per_replica needs at least 2 replicas for an error bar; got {n}.")
    return Estimate(mean=float(x.mean()), sem=float(x.std(unbiased=True) / math.sqrt(n)))


def fick_jacobs_mfpt(free_energy, temperature: float, n_points: int = 20_001) -> float:
    r"""Mean first-passage time from a reflecting end at 0 to an absorbing end at 1, by quadrature.

    :math:`\tau=\frac1T\int_0^1 e^{F(y)/T}\int_0^y e^{-F(z)/T}\,dz\,dy` for diffusion with coefficient
    :math:`T` in the free energy ``free_energy(y)`` (a function of a float64 tensor of positions, in
    loss units). Time is in the units of the diffusion (for SGD, :math:`\tau=t\eta`). For a flat
    free energy the result is :math:`1/(2T)`.
    """
    temperature = check.real("temperature", temperature, positive=True)
    n_points = check.integer("n_points", n_points, minimum=3)
    if not callable(free_energy):
        raise TypeError(f"free_energy must be a function of y; got {type(free_energy).__name__}.")
    y = torch.linspace(0.0, 1.0, n_points, dtype=torch.float64)
    f = torch.as_tensor(free_energy(y), dtype=torch.float64)
    if f.shape != y.shape or not torch.isfinite(f).all():
        raise ValueError("free_energy(y) must return finite values of the same shape as y.")
    f = (f - f.min()) / temperature  # shift for numerical range; the ratio below is shift-invariant
    inner = torch.cat([torch.zeros(1, dtype=y.dtype), torch.cumulative_trapezoid(torch.exp(-f), y)])
    return float(torch.trapezoid(torch.exp(f) * inner, y) / temperature)
