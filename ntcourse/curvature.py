r"""Curvature of a loss without forming its Hessian: Hessian-vector products, Hutchinson, Lanczos.

Every function takes the loss as a function of one flat parameter vector,
``loss_fn(theta) -> scalar`` with ``theta`` of shape ``(D,)`` (see :func:`flat_loss` to get one
from a ``torch.nn.Module``). Data enter through ``loss_fn``: to average curvature over several
batches, average the results for each batch's ``loss_fn`` explicitly.

* :func:`hvp`: :math:`Hv` by reverse-over-reverse differentiation, cost about two gradients.
* :func:`hutchinson_trace`: :math:`\Tr H=\E[v^\top Hv]` over Rademacher probes, with its standard error.
* :func:`lanczos`: the top ``k`` eigenvalues (and eigenvectors) from ``n_iter`` products.
* :func:`spectral_density`: stochastic Lanczos quadrature of the whole spectrum (:class:`SpectralDensity`).
* :func:`dense_hessian`: the full matrix, for toy sizes and as the reference in tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch.func import functional_call, grad, hessian, vmap

from . import _validate as check
from .thermo import Estimate

LossFn = Callable[[torch.Tensor], torch.Tensor]


def _theta(theta) -> torch.Tensor:
    return check.tensor("theta", theta, ndim=1)


def unflatten(model: torch.nn.Module) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """A function mapping a flat vector ``(D,)`` to ``model``'s parameter dict (``named_parameters`` order).

    The dict is what ``torch.func.functional_call(model, params, args)`` takes.
    """
    names, shapes, sizes = zip(*[(n, p.shape, p.numel()) for n, p in model.named_parameters()])

    def params(theta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.reshape(s) for n, t, s in zip(names, torch.split(theta, sizes), shapes)}

    return params


def flat_loss(model: torch.nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], inputs, targets):
    """Return ``(loss_fn, theta0)``: the loss of ``model`` on ``(inputs, targets)`` as a function of one flat vector.

    ``theta0`` holds the model's current parameters, concatenated in ``model.named_parameters()`` order.
    """
    params = unflatten(model)
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_fn(theta: torch.Tensor) -> torch.Tensor:
        return loss(functional_call(model, params(theta), (inputs,)), targets)

    return loss_fn, theta0


def hvp(loss_fn: LossFn, theta, v) -> torch.Tensor:
    """The Hessian of ``loss_fn`` at ``theta`` times ``v``; both ``(D,)``. Exact up to rounding."""
    theta = _theta(theta)
    v = check.tensor("v", v, ndim=1).to(theta)
    check.same_trailing_dim("v", v, theta.numel(), "theta")
    return _hvp(loss_fn, theta, v)


def _hvp(loss_fn: LossFn, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # Reverse over reverse: the gradient of (grad L . v). Forward-over-reverse (jvp of grad) is
    # cheaper in principle and works for one vector, but under vmap (how Hutchinson and SLQ batch
    # their probes) it fails on modules called through functional_call in this torch
    # ("ZeroTensors are immutable").
    return grad(lambda th: torch.dot(grad(loss_fn)(th), v))(theta)


def dense_hessian(loss_fn: LossFn, theta, max_dim: int = 5_000) -> torch.Tensor:
    """The full ``(D, D)`` Hessian, refused above ``max_dim`` parameters (use :func:`lanczos` there)."""
    theta = _theta(theta)
    if theta.numel() > max_dim:
        raise ValueError(
            f"theta has {theta.numel()} parameters; a dense Hessian is refused above max_dim={max_dim} "
            "(memory grows as D^2). Use hvp, hutchinson_trace or lanczos instead."
        )
    return hessian(loss_fn)(theta)


def hutchinson_trace(loss_fn: LossFn, theta, n_probes: int, generator: torch.Generator | None = None,
                     chunk: int = 64) -> Estimate:
    """Hutchinson's estimate of ``Tr H`` with Rademacher probes, and its standard error.

    Each probe ``v`` gives the unbiased sample ``v^T H v``; probes are evaluated ``chunk`` at a time with ``vmap``.
    """
    theta = _theta(theta)
    n_probes = check.integer("n_probes", n_probes, minimum=2)
    chunk = check.integer("chunk", chunk, minimum=1)
    samples = []
    product = vmap(lambda v: _hvp(loss_fn, theta, v))
    for start in range(0, n_probes, chunk):
        m = min(chunk, n_probes - start)
        probes = torch.randint(0, 2, (m, theta.numel()), generator=generator, device=theta.device).to(theta) * 2 - 1
        samples.append((probes * product(probes)).sum(1))
    s = torch.cat(samples).double()
    return Estimate(mean=float(s.mean()), sem=float(s.std(unbiased=True) / math.sqrt(n_probes)))


def _lanczos_batch(matvec: Callable[[torch.Tensor], torch.Tensor], q0: torch.Tensor, n_iter: int,
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lanczos from ``P`` starting vectors at once, full reorthogonalisation, float64.

    ``matvec`` maps ``(P, D)`` to ``(P, D)``. Returns ``alpha`` ``(P, m)``, ``beta`` ``(P, m-1)`` and the
    basis ``(m, P, D)``. A run that finds an invariant subspace (``beta`` ~ 0) continues with a zero
    vector, so its tridiagonal matrix splits into the exact block and a zero block whose eigenvectors
    have zero first component: they carry no quadrature weight and are dropped by the callers.
    """
    p, d = q0.shape
    basis = torch.zeros(n_iter, p, d, dtype=torch.float64, device=q0.device)
    alpha = torch.zeros(p, n_iter, dtype=torch.float64, device=q0.device)
    beta = torch.zeros(p, max(n_iter - 1, 0), dtype=torch.float64, device=q0.device)
    q = q0.double() / q0.double().norm(dim=1, keepdim=True)
    scale = torch.zeros(p, dtype=torch.float64, device=q0.device)
    for j in range(n_iter):
        basis[j] = q
        w = matvec(q).double()
        alpha[:, j] = (w * q).sum(1)
        scale = torch.maximum(scale, alpha[:, j].abs())
        for _ in range(2):                                   # full reorthogonalisation, twice
            coef = torch.einsum("jpd,pd->jp", basis[: j + 1], w)
            w = w - torch.einsum("jp,jpd->pd", coef, basis[: j + 1])
        if j + 1 < n_iter:
            b = w.norm(dim=1)
            alive = b > 1e-12 * torch.clamp(scale, min=1.0)
            beta[:, j] = torch.where(alive, b, torch.zeros_like(b))
            q = torch.where(alive[:, None], w / torch.where(alive, b, torch.ones_like(b))[:, None], torch.zeros_like(w))
    return alpha, beta, basis


def _tridiagonal(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return torch.diag_embed(alpha) + torch.diag_embed(beta, 1) + torch.diag_embed(beta, -1)


def _iterations(k: int, d: int, n_iter: int | None, default: int) -> int:
    if k > d:
        raise ValueError(f"k={k} exceeds the number of parameters D={d}.")
    n_iter = min(d, default) if n_iter is None else check.integer("n_iter", n_iter, minimum=k)
    if n_iter > d:
        raise ValueError(f"n_iter={n_iter} exceeds the number of parameters D={d}.")
    return n_iter


def lanczos(loss_fn: LossFn, theta, k: int, n_iter: int | None = None, generator: torch.Generator | None = None,
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` eigenvalues (descending, ``(k,)``) and eigenvectors (columns, ``(D, k)``) of the Hessian.

    Lanczos with full reorthogonalisation, ``n_iter`` Hessian-vector products (default
    ``min(D, max(3k, 30))``), in float64. The largest eigenvalues converge first. If the Krylov space
    closes early (a Hessian with fewer than ``n_iter`` distinct eigenvalues), the eigenvalues found are exact.
    """
    theta = _theta(theta)
    d = theta.numel()
    k = check.integer("k", k, minimum=1)
    n_iter = _iterations(k, d, n_iter, max(3 * k, 30))
    product = vmap(lambda v: _hvp(loss_fn, theta, v.to(theta)))
    q0 = torch.randn(1, d, generator=generator, dtype=torch.float64, device=theta.device)
    alpha, beta, basis = _lanczos_batch(product, q0, n_iter)
    m = n_iter if bool((beta[0] > 0).all()) else int((beta[0] == 0).nonzero()[0]) + 1
    evals, evecs = torch.linalg.eigh(_tridiagonal(alpha[0, :m], beta[0, : m - 1]))
    order = evals.argsort(descending=True)[: min(k, m)]
    return evals[order], basis[:m, 0].T @ evecs[:, order]


@dataclass(frozen=True, eq=False)
class SpectralDensity:
    r"""A stochastic Lanczos quadrature of the Hessian spectrum.

    For probe ``p``, ``nodes[p]`` and ``weights[p]`` (each ``(P, m)``, float64, weights summing to one per
    probe) form the Gauss quadrature of the measure :math:`\mu_p=\sum_i (u_i^\top q_p)^2\delta_{\lambda_i}` (``q_p`` the unit-normalised probe, ``u_i`` the eigenvectors),
    exact for polynomials of degree up to :math:`2m-1`. The spectral density
    :math:`\rho(\lambda)=\frac1D\sum_i\delta(\lambda-\lambda_i)` is estimated by the average of these
    measures over probes; :math:`\Tr f(H)=D\int f\,d\rho`.
    """

    nodes: torch.Tensor
    weights: torch.Tensor
    dim: int

    def trace(self, f: Callable[[torch.Tensor], torch.Tensor] = lambda x: x) -> Estimate:
        r"""Estimate of :math:`\Tr f(H)` (``f`` acts elementwise on a float64 tensor) with its standard error."""
        per_probe = self.dim * (self.weights * f(self.nodes)).sum(1)
        n = per_probe.numel()
        sem = float(per_probe.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
        return Estimate(mean=float(per_probe.mean()), sem=sem)

    def density(self, grid, width: float) -> torch.Tensor:
        r"""The density :math:`\rho` smoothed by a Gaussian of standard deviation ``width`` on ``grid`` ``(G,)``.

        Integrates to one over the real line (the mass of eigenvalues beyond the grid is lost from it).
        """
        grid = check.tensor("grid", grid, ndim=1).double().to(self.nodes.device)
        width = check.real("width", width, positive=True)
        z = (grid[:, None, None] - self.nodes[None]) / width
        kernel = torch.exp(-0.5 * z**2) / (width * math.sqrt(2 * math.pi))
        return (kernel * self.weights[None]).sum(2).mean(1)


def spectral_density(loss_fn: LossFn, theta, n_probes: int, n_iter: int = 80,
                     generator: torch.Generator | None = None) -> SpectralDensity:
    """Stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019) of the Hessian at ``theta``.

    Runs ``n_iter`` Lanczos steps from each of ``n_probes`` Rademacher vectors, all probes batched in
    one ``vmap`` of Hessian-vector products: ``n_probes * n_iter`` products in all.
    """
    theta = _theta(theta)
    d = theta.numel()
    n_probes = check.integer("n_probes", n_probes, minimum=1)
    n_iter = check.integer("n_iter", n_iter, minimum=1)
    if n_iter > d:
        raise ValueError(f"n_iter={n_iter} exceeds the number of parameters D={d}.")
    probes = torch.randint(0, 2, (n_probes, d), generator=generator, device=theta.device).double() * 2 - 1
    product = vmap(lambda v: _hvp(loss_fn, theta, v.to(theta)))
    alpha, beta, _ = _lanczos_batch(product, probes, n_iter)
    evals, evecs = torch.linalg.eigh(_tridiagonal(alpha, beta))
    return SpectralDensity(nodes=evals, weights=evecs[:, 0, :] ** 2, dim=d)
