r"""Gradient noise measured from per-sample gradients, without forming its covariance.

For a dataset of ``N`` samples, the per-sample gradients :math:`g_i=\nabla\ell_i(\theta)` form an
``(N, D)`` matrix :math:`G`. The per-sample gradient covariance is
:math:`C=\frac1N\sum_i(g_i-\bar g)(g_i-\bar g)^\top` (Chapter 1, equation eq-ch1-per-sample-cov), and a
minibatch of ``B`` samples drawn with replacement carries noise of covariance :math:`C/B`. Its trace
and leading eigenvalues come from the centred ``(N, D)`` matrix directly (a trace is a sum of
squares; eigenvalues are squared singular values), so ``C`` is never formed.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.func import grad, vmap

from . import _validate as check


def per_sample_grads(sample_loss: Callable, theta, inputs, targets) -> torch.Tensor:
    """Gradients of ``sample_loss(theta, x, y)`` for every sample at once: ``(N, D)``.

    ``sample_loss`` computes the loss of ONE sample (``x`` without a batch axis); it is
    vectorised with ``torch.func.vmap(grad(...))``, with no Python loop over samples.
    """
    theta = check.tensor("theta", theta, ndim=1)
    if not callable(sample_loss):
        raise TypeError(f"sample_loss must be a function (theta, x, y) -> scalar; got {type(sample_loss).__name__}.")
    inputs, targets = torch.as_tensor(inputs), torch.as_tensor(targets)
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"inputs has {inputs.shape[0]} samples but targets has {targets.shape[0]}; they must match.")
    return vmap(grad(sample_loss), in_dims=(None, 0, 0))(theta, inputs, targets)


def _centred(per_sample) -> torch.Tensor:
    g = check.tensor("per_sample", per_sample, ndim=2)
    if g.shape[0] < 2:
        raise ValueError(f"per_sample needs at least 2 samples (rows); got {g.shape[0]}.")
    return (g - g.mean(0)).double()


def covariance_trace(per_sample, batch_size: int = 1) -> float:
    r""":math:`\Tr C/B` from per-sample gradients ``(N, D)``: the total variance of a minibatch gradient."""
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    c = _centred(per_sample)
    return float((c * c).sum() / c.shape[0] / batch_size)


def covariance_top_eigenvalues(per_sample, k: int, batch_size: int = 1) -> torch.Tensor:
    """The ``k`` largest eigenvalues of ``C/B`` (descending), from the singular values of the centred gradients."""
    c = _centred(per_sample)
    k = check.integer("k", k, minimum=1)
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    if k > min(c.shape):
        raise ValueError(f"k={k} exceeds min(N, D)={min(c.shape)}, the largest possible rank of C.")
    s = torch.linalg.svdvals(c)
    return (s[:k] ** 2 / c.shape[0] / batch_size)


def temperature(lr: float, per_sample, batch_size: int) -> float:
    r"""The isotropic-equivalent temperature :math:`T=\eta\,\bar\sigma^2/(2B)` with :math:`\bar\sigma^2=\Tr C/D`.

    For isotropic noise this is Chapter 1's :math:`T=\eta\sigma^2/(2B)`; for anisotropic noise it
    is the temperature whose isotropic noise has the same total variance.
    """
    lr = check.real("lr", lr, positive=True)
    d = check.tensor("per_sample", per_sample, ndim=2).shape[1]
    return lr * covariance_trace(per_sample, batch_size) / (2 * d)
