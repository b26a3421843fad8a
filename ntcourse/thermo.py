r"""Thermodynamic estimators and exact stationary predictions for linear dynamics.

* :func:`discrete_lyapunov` / :func:`continuous_lyapunov`: the stationary covariance of SGD
  on a quadratic, exactly (discrete time) and in the small-step limit.
* :func:`replica_estimate`: mean and standard error of a stationary average measured over
  independent replicas (each replica's time average is one independent sample);
  :func:`ratio_estimate` the same for a ratio of two averages.
* :func:`equipartition_ratio`: :math:`\langle\lambda_i x_i^2\rangle/T` per mode, one at equipartition.
* :func:`fluctuation_dissipation`: the two sides of the two stationary SGD relations (Yaida 2018).
* :func:`fick_jacobs_mfpt`, :func:`path_free_energy`, :func:`occupation_free_energy`: the free energy
  along a path, predicted from curvature or measured from where replicas spend their time, and the
  mean first-passage time it implies.
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


def _per_replica(name: str, value) -> torch.Tensor:
    x = check.tensor(name, value, ndim=(1, 2)).double()
    return x if x.ndim == 1 else x.mean(1)


def ratio_estimate(numerator, denominator) -> Estimate:
    r"""The ratio :math:`\langle a\rangle/\langle b\rangle` of two stationary averages, with its standard error.

    ``numerator`` and ``denominator`` are ``(R,)`` per-replica time averages or ``(R, K)`` series
    (averaged over ``K``), measured on the same ``R`` independent replicas. The error is the
    delta-method one, which includes the correlation of ``a`` and ``b`` across replicas:
    :math:`\mathrm{se}^2=\frac{1}{R\bar b^2}\mathrm{var}(a-\rho\,b)`, :math:`\rho=\bar a/\bar b`.
    """
    a = _per_replica("numerator", numerator)
    b = _per_replica("denominator", denominator)
    if a.shape != b.shape:
        raise ValueError(f"numerator has {a.numel()} replicas but denominator has {b.numel()}; they must match.")
    if a.numel() < 2:
        raise ValueError(f"need at least 2 replicas for an error bar; got {a.numel()}.")
    if b.mean() == 0:
        raise ValueError("the denominator averages to zero; the ratio is undefined.")
    rho = a.mean() / b.mean()
    sem = (a - rho * b).std(unbiased=True) / (b.mean().abs() * math.sqrt(a.numel()))
    return Estimate(mean=float(rho), sem=float(sem))


def equipartition_ratio(modes, curvature, temperature: float) -> list[Estimate]:
    r"""Equipartition per mode: :math:`\langle\lambda_i x_i^2\rangle/T` with its standard error.

    At equipartition each quadratic mode holds :math:`\tfrac12\lambda_i\langle x_i^2\rangle=\tfrac T2`,
    so every ratio is one.

    Args:
        modes: ``(R, K, n)`` coordinates of ``n`` modes (deviations from the minimum, in the
            eigenbasis of the Hessian) over ``K`` recorded steps of ``R`` independent replicas.
        curvature: ``(n,)`` eigenvalues :math:`\lambda_i > 0`.
        temperature: :math:`T > 0`, in loss units.

    Returns:
        One :class:`Estimate` per mode.
    """
    x = check.tensor("modes", modes, ndim=3).double()
    lam = check.tensor("curvature", curvature, ndim=1).double().to(x.device)
    check.same_trailing_dim("curvature", lam, x.shape[-1], "modes")
    if (lam <= 0).any():
        raise ValueError(f"curvature must be positive; got minimum {lam.min().item():.3g}.")
    temperature = check.real("temperature", temperature, positive=True)
    per_replica = (lam * x**2).mean(1) / temperature          # (R, n): time average per replica
    return [replica_estimate(per_replica[:, i]) for i in range(per_replica.shape[1])]


def fluctuation_dissipation(theta, full_grad, batch_grad, lr: float, hvp_batch_grad=None,
                            ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    r"""Both sides of the two stationary relations of plain SGD, :math:`\theta'=\theta-\eta g_B`.

    With :math:`\E[g_B\mid\theta]=\nabla L(\theta)`, stationarity of :math:`\langle\|\theta\|^2\rangle`
    gives, exactly and for any loss, **FDR1** :math:`2\langle\theta\cdot\nabla L\rangle=\eta\langle\|g_B\|^2\rangle`;
    stationarity of :math:`\langle L\rangle` gives, exactly for a quadratic loss and to second order
    in :math:`\eta` otherwise, **FDR2** :math:`2\langle\|\nabla L\|^2\rangle=\eta\langle g_B^\top H g_B\rangle`.
    (Relations of this kind were given by Yaida, 2018; this form is the course's own.)
    ``theta`` must be measured from the same origin at every step (any fixed point works for FDR1).

    Args:
        theta, full_grad, batch_grad: ``(..., D)`` at the same recorded steps (e.g. ``(R, K, D)``).
        lr: :math:`\eta > 0`.
        hvp_batch_grad: ``(..., D)`` :math:`H g_B`, optional; FDR2 is returned only when given.

    Returns:
        ``{"fdr1": (lhs, rhs), "fdr2": (lhs, rhs)}`` with per-step sides of shape ``(...)``; average
        them over steps and replicas, e.g. with :func:`ratio_estimate`.
    """
    theta = check.tensor("theta", theta).double()
    full_grad = check.tensor("full_grad", full_grad).double()
    batch_grad = check.tensor("batch_grad", batch_grad).double()
    for name, t in (("full_grad", full_grad), ("batch_grad", batch_grad)):
        if t.shape != theta.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but theta has {tuple(theta.shape)}; they must match.")
    lr = check.real("lr", lr, positive=True)
    out = {"fdr1": (2 * (theta * full_grad).sum(-1), lr * (batch_grad**2).sum(-1))}
    if hvp_batch_grad is not None:
        hg = check.tensor("hvp_batch_grad", hvp_batch_grad).double()
        if hg.shape != theta.shape:
            raise ValueError(f"hvp_batch_grad has shape {tuple(hg.shape)} but theta has {tuple(theta.shape)}.")
        out["fdr2"] = (2 * (full_grad**2).sum(-1), lr * (batch_grad * hg).sum(-1))
    return out


def path_free_energy(loss, transverse_curvature, temperature: float) -> torch.Tensor:
    r"""Free energy along a path of a quadratic tube, :math:`F(s)=L(s)+\frac T2\sum_i\ln\lambda^\perp_i(s)`.

    This is the isotropic-noise form (Langevin at temperature :math:`T`); constants independent of
    :math:`s` are dropped, so only differences of :math:`F` are meaningful.

    Args:
        loss: ``(S,)`` loss along the path.
        transverse_curvature: ``(S, n)`` positive transverse eigenvalues, or ``(S,)`` already summed
            logarithms :math:`\sum_i\ln\lambda^\perp_i` (e.g. ``SpectralDensity.trace(torch.log)``).
        temperature: :math:`T > 0`.

    Returns:
        ``(S,)`` float64.
    """
    loss = check.tensor("loss", loss, ndim=1).double()
    lam = check.tensor("transverse_curvature", transverse_curvature, ndim=(1, 2)).double()
    if lam.shape[0] != loss.shape[0]:
        raise ValueError(f"transverse_curvature has {lam.shape[0]} points along the path but loss has {loss.shape[0]}.")
    temperature = check.real("temperature", temperature, positive=True)
    if lam.ndim == 2:
        if (lam <= 0).any():
            raise ValueError(f"transverse curvatures must be positive; got minimum {lam.min().item():.3g}.")
        lam = torch.log(lam).sum(1)
    return loss + 0.5 * temperature * lam


def occupation_free_energy(positions, edges, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Free energy measured from occupation, :math:`F(s)=-T\ln p(s)`, shifted to minimum zero.

    Args:
        positions: samples of the path coordinate, any shape (flattened), e.g. ``(R, K)``.
        edges: ``(G+1,)`` increasing bin edges.
        temperature: :math:`T > 0`.

    Returns:
        ``(F, counts)``, each ``(G,)``; ``F`` is ``inf`` in empty bins.
    """
    x = check.tensor("positions", positions).double().reshape(-1)
    edges = check.tensor("edges", edges, ndim=1).double().to(x.device)
    if edges.numel() < 2 or not (edges[1:] > edges[:-1]).all():
        raise ValueError("edges must be at least 2 strictly increasing values.")
    temperature = check.real("temperature", temperature, positive=True)
    inside = (x >= edges[0]) & (x <= edges[-1])
    idx = torch.bucketize(x[inside], edges[1:-1], right=True)
    counts = torch.bincount(idx, minlength=edges.numel() - 1).double()
    density = counts / (counts.sum().clamp(min=1) * (edges[1:] - edges[:-1]))
    f = -temperature * torch.log(density)
    return f - f[torch.isfinite(f)].min(), counts
