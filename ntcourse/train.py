"""Training loops for one network or a whole ensemble, written functionally.

Parameters are a dict of tensors (``name -> tensor``); an ensemble's dict has a leading axis of
length ``M`` (see :func:`ntcourse.models.ensemble`) and all ``M`` models take their SGD steps in
one vectorised pass, each on its own minibatches. The update is plain SGD with optional weight
decay, :math:`\\theta\\leftarrow\\theta-\\eta_t(g_B+\\gamma\\theta)`, with a rate or schedule from
:mod:`ntcourse.schedules`. Measurements are recorded by callbacks every ``every`` steps; a run
whose loss or parameters become non-finite stops with an error naming the step and the rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from . import _validate as check
from .dynamics import DivergenceError
from .runtime import step_range
from .schedules import as_schedule


@dataclass(frozen=True, eq=False)
class History:
    """Recorded values: ``steps`` ``(K,)`` and ``records`` name -> ``(K, ...)`` (``(K, M, ...)`` for ensembles)."""

    steps: torch.Tensor
    records: dict[str, torch.Tensor]

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.records:
            raise KeyError(f"no record {name!r}; recorded: {sorted(self.records)}.")
        return self.records[name]


def _batches(n: int, batch_size: int | None, leading: tuple[int, ...], generator, device):
    if batch_size is None:
        return None
    return torch.randint(n, (*leading, batch_size), generator=generator, device=device)


def train_ensemble(
    model: nn.Module,
    params: Mapping[str, torch.Tensor],
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    lr,
    n_steps: int,
    *,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    generator: torch.Generator | None = None,
    callbacks: Mapping[str, Callable[[dict], torch.Tensor]] | None = None,
    every: int = 1,
    buffers: Mapping[str, torch.Tensor] | None = None,
    progress: bool | None = None,
) -> tuple[dict[str, torch.Tensor], History]:
    """Train ``M`` copies of ``model`` at once; ``params`` has a leading axis of length ``M``.

    Args:
        model: the architecture (its own parameters are not used; ``params`` are).
        params: name -> ``(M, ...)`` stacked parameters (``ntcourse.models.ensemble``).
        loss: ``loss(output, target) -> scalar`` (mean over the batch).
        x, y: the training set, ``(N, ...)``.
        lr: learning rate (number >= 0) or schedule.
        batch_size: ``None`` for full-batch gradient descent; else each model draws its own ``B``
            indices with replacement at every step.
        weight_decay: :math:`\\gamma \\ge 0`.
        callbacks: name -> function of the current params dict returning ``(M, ...)``.
        every: record every ``every`` steps (and after the last step).

    Returns:
        ``(params, history)`` with the trained stacked parameters.
    """
    params = {k: v.detach().clone() for k, v in params.items()}
    if not params:
        raise ValueError("params is empty: build it with ntcourse.models.ensemble.")
    m = next(iter(params.values())).shape[0]
    for k, v in params.items():
        if v.shape[0] != m:
            raise ValueError(f"params[{k!r}] has leading size {v.shape[0]}, others {m}: all need the ensemble axis M.")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}; they must match.")
    schedule = as_schedule(lr)
    n_steps = check.integer("n_steps", n_steps, minimum=0)
    every = check.integer("every", every, minimum=1)
    weight_decay = check.real("weight_decay", weight_decay, nonnegative=True)
    if batch_size is not None:
        batch_size = check.integer("batch_size", batch_size, minimum=1)
    buffers = dict(buffers or {})
    callbacks = dict(callbacks or {})
    base = model

    def loss_of(p, b, xb, yb):
        return loss(functional_call(base, (p, b), (xb,)), yb)

    full = vmap(grad(loss_of), in_dims=(0, 0, None, None))
    per_model = vmap(grad(loss_of), in_dims=(0, 0, 0, 0))
    recorded: dict[str, list[torch.Tensor]] = {k: [] for k in callbacks}
    steps: list[int] = []

    def record(t):
        for name, fn in callbacks.items():
            recorded[name].append(torch.as_tensor(fn(params)).detach().clone())
        steps.append(t)

    for t in step_range(n_steps, progress, "training"):
        if t % every == 0:
            record(t)
        eta = schedule(t)
        idx = _batches(x.shape[0], batch_size, (m,), generator, x.device)
        g = full(params, buffers, x, y) if idx is None else per_model(params, buffers, x[idx], y[idx])
        params = {k: p - eta * (g[k] + weight_decay * p) for k, p in params.items()}
        if not all(torch.isfinite(p).all() for p in params.values()):
            raise DivergenceError(
                f"training diverged at step {t} (lr={eta:.6g}): parameters became inf or nan. "
                "Lower the learning rate or increase the batch size."
            )
    record(n_steps)
    return params, History(steps=torch.tensor(steps), records={k: torch.stack(v) for k, v in recorded.items()})


def train(
    model: nn.Module,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    lr,
    n_steps: int,
    *,
    callbacks: Mapping[str, Callable[[dict], torch.Tensor]] | None = None,
    **options,
) -> tuple[dict[str, torch.Tensor], History]:
    """Train one network, starting from ``model``'s own parameters (the module is not modified).

    The same loop as :func:`train_ensemble` with ``M = 1`` (so one model and an ensemble of one
    give identical results), taking and returning parameters without the ensemble axis. The
    callbacks receive the parameter dict of the single model; records have shape ``(K, ...)``.
    Other keyword arguments (``batch_size``, ``weight_decay``, ``generator``, ``every``,
    ``progress``) are those of :func:`train_ensemble`. Load the result back with
    ``model.load_state_dict(params, strict=False)``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    params = {k: v.detach()[None] for k, v in model.named_parameters()}
    buffers = {k: v.detach()[None] for k, v in model.named_buffers()}
    single = {name: (lambda p, fn=fn: torch.as_tensor(fn({k: v[0] for k, v in p.items()}))[None])
              for name, fn in (callbacks or {}).items()}
    trained, history = train_ensemble(model, params, loss, x, y, lr, n_steps, callbacks=single, buffers=buffers, **options)
    records = {k: v[:, 0] for k, v in history.records.items()}
    return {k: v[0] for k, v in trained.items()}, History(steps=history.steps, records=records)
