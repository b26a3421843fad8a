r"""Curvature of a loss without forming its Hessian: Hessian-vector products, Hutchinson, Lanczos.

Every function takes the loss as a function of one flat parameter vector,
``loss_fn(theta) -> scalar`` with ``theta`` of shape ``(D,)`` (see :func:`flat_loss` to get one
from a ``torch.nn.Module``). Data enter through ``loss_fn``: to average curvature over several
batches, average the results for each batch's ``loss_fn`` explicitly.

* :func:`hvp`: :math:`Hv` by reverse-over-reverse differentiation, cost about two gradients.
* :func:`hutchinson_trace`: :math:`\Tr H=\E[v^\top Hv]` over Rademacher probes, with its standard error.
* :func:`lanczos`: the top ``k`` eigenvalues (and eigenvectors) from ``n_iter`` products.
* :func:`dense_hessian`: the full matrix, for toy sizes and as the reference in tests.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.func import functional_call, grad, hessian, vmap

from . import _validate as check
from .thermo import Estimate

LossFn = Callable[[torch.Tensor], torch.Tensor]


def _theta(theta) -> torch.Tensor:
    return check.tensor("theta", theta, ndim=1)


def flat_loss(model: torch.nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], inputs, targets):
    """Return ``(loss_fn, theta0)``: the loss of ``model`` on ``(inputs, targets)`` as a function of one flat vector.

    ``theta0`` holds the model's current parameters, concatenated in ``model.named_parameters()`` order.
    """
    names, shapes, sizes = [], [], []
    for n, p in model.named_parameters():
        names.append(n)
        shapes.append(p.shape)
        sizes.append(p.numel())
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_fn(theta: torch.Tensor) -> torch.Tensor:
        parts = torch.split(theta, sizes)
        params = {n: t.reshape(s) for n, t, s in zip(names, parts, shapes)}
        return loss(functional_call(model, params, (inputs,)), targets)

    return loss_fn, theta0


def hvp(loss_fn: LossFn, theta, v) -> torch.Tensor:
    """The Hessian of ``loss_fn`` at ``theta`` times ``v``; both ``(D,)``. Exact up to rounding."""
    theta = _theta(theta)
    v = check.tensor("v", v, ndim=1).to(theta)
    check.same_trailing_dim("v", v, theta.numel(), "theta")
    return _hvp(loss_fn, theta, v)


def _hvp(loss_fn: LossFn, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # Reverse over reverse: the gradient of (grad L . v). Forward-over-reverse (jvp of grad) is
    # cheaper in principle but fails on modules called through functional_call in this torch
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


def lanczos(loss_fn: LossFn, theta, k: int, n_iter: int | None = None, generator: torch.Generator | None = None,
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` eigenvalues (descending, ``(k,)``) and eigenvectors (columns, ``(D, k)``) of the Hessian.

    Lanczos with full reorthogonalisation, ``n_iter`` Hessian-vector products (default
    ``min(D, max(3k, 30))``), in float64. The largest eigenvalues converge first.
    """
    theta = _theta(theta)
    d = theta.numel()
    k = check.integer("k", k, minimum=1)
    if k > d:
        raise ValueError(f"k={k} exceeds the number of parameters D={d}.")
    n_iter = min(d, max(3 * k, 30)) if n_iter is None else check.integer("n_iter", n_iter, minimum=k)
    if n_iter > d:
        raise ValueError(f"n_iter={n_iter} exceeds the number of parameters D={d}.")
    matvec = lambda v: hvp(loss_fn, theta, v.to(theta)).double()
    q = torch.randn(d, generator=generator, dtype=torch.float64, device=theta.device)
    basis = torch.zeros(n_iter, d, dtype=torch.float64, device=theta.device)
    alpha = torch.zeros(n_iter, dtype=torch.float64, device=theta.device)
    beta = torch.zeros(n_iter, dtype=torch.float64, device=theta.device)
    q = q / q.norm()
    m = n_iter
    for j in range(n_iter):
        basis[j] = q
        w = matvec(q)
        alpha[j] = w @ q
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)      # full reorthogonalisation, twice
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        if j + 1 < n_iter:
            beta[j] = w.norm()
            if beta[j] < 1e-12 * max(1.0, alpha[: j + 1].abs().max().item()):
                m = j + 1                                      # invariant subspace found: stop early
                break
            q = w / beta[j]
    tri = torch.diag(alpha[:m]) + torch.diag(beta[: m - 1], 1) + torch.diag(beta[: m - 1], -1)
    evals, evecs = torch.linalg.eigh(tri)
    order = evals.argsort(descending=True)[: min(k, m)]
    vectors = basis[:m].T @ evecs[:, order]
    return evals[order], vectors
