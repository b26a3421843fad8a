r"""Stochastic dynamics over many replicas at once: SGD, SignGD and Langevin.

All ``R`` replicas live in one tensor ``theta`` of shape ``(R, D)`` and advance together;
there is no Python loop over replicas, only over time steps. Each run returns a
:class:`Trajectory` holding the final state and the observables recorded every ``every``
steps.

The update rules (step ``t``, rate :math:`\eta_t`, gradient estimate :math:`g_t`):

* SGD:       :math:`\theta_{t+1} = \theta_t - \eta_t (g_t + \xi_t)`
* SignGD:    :math:`\theta_{t+1} = \theta_t - \eta_t \operatorname{sign}(g_t + \xi_t)`
* Langevin (Euler--Maruyama for :math:`d\theta=-\nabla L\,d\tau+\sqrt{2T}\,dW`):
  :math:`\theta_{t+1} = \theta_t - h\nabla L(\theta_t) + \sqrt{2Th}\,\zeta_t`, :math:`\zeta_t\sim\mathcal N(0,I)`

where :math:`\xi_t` is optional additive Gaussian gradient noise (a :class:`GaussianNoise`).
The gradient estimate comes from a landscape (anything with ``.grad(theta)``) or from a
function ``gradient(theta, generator)`` that may itself be stochastic, e.g. a minibatch
gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from . import _validate as check
from .runtime import step_range
from .schedules import Schedule, as_schedule

GradientFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class DivergenceError(FloatingPointError):
    """A run whose parameters became infinite or NaN (or exceeded the blow-up threshold)."""


# --------------------------------------------------------------------------- noise models


@dataclass(frozen=True, eq=False)
class GaussianNoise:
    r"""Additive Gaussian gradient noise :math:`\xi\sim\mathcal N(0, C)` with a fixed covariance.

    Build it with :func:`isotropic_noise`, :func:`hessian_noise` or :func:`covariance_noise`.

    Attributes:
        covariance: ``(D, D)`` covariance ``C`` of the noise added to one gradient estimate
            (already divided by the batch size), or ``None`` for isotropic noise.
        std: for isotropic noise, the standard deviation per coordinate.
        dim: the parameter dimension ``D`` it was built for, or ``None`` (isotropic: any ``D``).
    """

    covariance: torch.Tensor | None = None
    std: float = 0.0
    dim: int | None = None
    _root: torch.Tensor | None = field(default=None, repr=False)

    def cov_matrix(self, dim: int | None = None) -> torch.Tensor:
        """The covariance ``C`` as a ``(D, D)`` matrix."""
        if self.covariance is not None:
            return self.covariance
        if dim is None:
            raise ValueError("isotropic noise has no fixed dimension: pass dim=D.")
        return self.std**2 * torch.eye(dim, dtype=torch.float64)

    def trace(self, dim: int | None = None) -> float:
        """``Tr C``."""
        return float(torch.trace(self.cov_matrix(dim)))

    def sample(self, shape: tuple[int, int], generator: torch.Generator, dtype, device) -> torch.Tensor:
        """Draw noise of shape ``(R, D)``."""
        z = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        if self._root is None:
            return self.std * z
        check.same_trailing_dim("theta", z, self.dim, "the noise covariance")
        return z @ self._root.to(dtype=dtype, device=device).T


def _psd_root(cov: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a PSD matrix (works for singular ones, unlike Cholesky)."""
    w, v = torch.linalg.eigh(cov.double())
    return (v * w.clamp_min(0).sqrt()) @ v.T


def isotropic_noise(sigma: float, batch_size: int = 1) -> GaussianNoise:
    r"""Isotropic noise with per-sample standard deviation ``sigma``: :math:`C = (\sigma^2/B) I`."""
    sigma = check.real("sigma", sigma, nonnegative=True)
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    return GaussianNoise(std=sigma / math.sqrt(batch_size))


def covariance_noise(covariance, batch_size: int = 1) -> GaussianNoise:
    r"""Noise with a given per-sample covariance ``covariance`` ``(D, D)``: :math:`C/B` per step."""
    cov = check.psd_matrix("covariance", covariance).double()
    batch_size = check.integer("batch_size", batch_size, minimum=1)
    cov = cov / batch_size
    return GaussianNoise(covariance=cov, dim=cov.shape[0], _root=_psd_root(cov))


def hessian_noise(hessian, scale: float = 1.0, batch_size: int = 1) -> GaussianNoise:
    r"""Hessian-shaped noise: :math:`C = \text{scale}\cdot H / B`.

    Near the minimum of a well-specified model the gradient-noise covariance is close to the
    Hessian (Chapter 1); ``scale`` sets its size (units: loss).
    """
    h = check.psd_matrix("hessian", hessian)
    scale = check.real("scale", scale, nonnegative=True)
    return covariance_noise(scale * h.double(), batch_size=batch_size)


# --------------------------------------------------------------------------- trajectories


@dataclass(frozen=True)
class StepState:
    """What an observable sees at a recorded step, *before* the update.

    Attributes:
        theta: ``(R, D)`` parameters.
        gradient: ``(R, D)`` the gradient estimate the update uses (including additive noise;
            for Langevin, the exact gradient).
        step: the step number ``t``.
        lr: the rate used at this step.
    """

    theta: torch.Tensor
    gradient: torch.Tensor
    step: int
    lr: float


Observable = Callable[[StepState], torch.Tensor]


@dataclass(frozen=True, eq=False)
class Trajectory:
    """The result of a run.

    Attributes:
        theta: ``(R, D)`` final parameters.
        steps: ``(K,)`` step numbers at which observables were recorded.
        lrs: ``(K,)`` learning rate at those steps.
        records: name -> ``(K, R, ...)`` recorded values (``"theta"`` is always available
            when ``record_theta=True``).
        first_passage: ``(R,)`` with ``absorb``: the number of steps after which each replica
            first entered the absorbing set, ``-1`` if it never did; otherwise ``None``.
    """

    theta: torch.Tensor
    steps: torch.Tensor
    lrs: torch.Tensor
    records: dict[str, torch.Tensor]
    first_passage: torch.Tensor | None = None

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.records:
            raise KeyError(f"no observable {name!r} was recorded; recorded: {sorted(self.records)}.")
        return self.records[name]

    def time_average(self, name: str) -> torch.Tensor:
        """Average of a record over the recorded steps, one value per replica: ``(R, ...)``."""
        values = self[name]
        if values.shape[0] == 0:
            raise ValueError(f"no records of {name!r}: the run recorded nothing (check record_from and every).")
        return values.mean(0)


def _as_gradient_fn(gradient) -> GradientFn:
    if hasattr(gradient, "grad") and callable(gradient.grad):
        return lambda theta, gen: gradient.grad(theta)
    if callable(gradient):
        return gradient
    raise TypeError(
        "gradient must be a landscape (with a .grad(theta) method) or a function "
        f"gradient(theta, generator) -> tensor; got {type(gradient).__name__}."
    )


def _check_theta(theta0) -> torch.Tensor:
    theta = check.tensor("theta0", theta0, ndim=2)
    if theta.shape[0] < 1 or theta.shape[1] < 1:
        raise ValueError(f"theta0 must have shape (n_replicas, D) with both >= 1; got {tuple(theta.shape)}.")
    return theta.clone()


def _run(
    name: str,
    update: Callable[[torch.Tensor, torch.Tensor, float, torch.Generator], torch.Tensor],
    gradient_estimate: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    theta0,
    lr,
    n_steps: int,
    *,
    generator: torch.Generator | None = None,
    observables: Mapping[str, Observable] | None = None,
    every: int = 1,
    record_from: int = 0,
    record_theta: bool = False,
    boundary: Callable[[torch.Tensor], torch.Tensor] | None = None,
    absorb: Callable[[torch.Tensor], torch.Tensor] | None = None,
    blowup: float = 1e12,
    check_every: int = 100,
    progress: bool | None = None,
) -> Trajectory:
    theta = _check_theta(theta0)
    schedule: Schedule = as_schedule(lr)
    n_steps = check.integer("n_steps", n_steps, minimum=0)
    every = check.integer("every", every, minimum=1)
    record_from = check.integer("record_from", record_from, minimum=0)
    check_every = check.integer("check_every", check_every, minimum=1)
    blowup = check.real("blowup", blowup, positive=True)
    for arg, fn in (("boundary", boundary), ("absorb", absorb)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{arg} must be a function of theta (R, D); got {type(fn).__name__}.")
    observables = dict(observables or {})
    for key, fn in observables.items():
        if not callable(fn):
            raise TypeError(f"observables[{key!r}] must be a function of a StepState; got {type(fn).__name__}.")
    if generator is None:
        generator = torch.Generator(device=theta.device)
        generator.manual_seed(torch.initial_seed() % (2**63))
    elif generator.device != theta.device:
        raise ValueError(
            f"generator is on {generator.device} but theta0 is on {theta.device}; "
            "make the generator with ntcourse.generator(device=theta0.device)."
        )

    recorded: dict[str, list[torch.Tensor]] = {k: [] for k in observables}
    if record_theta:
        recorded["theta"] = []
    steps: list[int] = []
    lrs: list[float] = []
    # Index of the first step at which each replica stopped being finite, -1 while it is fine:
    # tracked without a device sync; checked every `check_every` steps.
    first_bad = torch.full((theta.shape[0],), -1, dtype=torch.long, device=theta.device)
    # First step at which each replica entered the absorbing set (-1: not yet); absorbed replicas freeze.
    passage = torch.full((theta.shape[0],), -1, dtype=torch.long, device=theta.device)

    def fail(step_hint: int) -> None:
        bad = first_bad[first_bad >= 0]
        step = int(bad.min()) if bad.numel() else step_hint
        raise DivergenceError(
            f"{name} diverged at step {step} (lr={schedule(step):.6g}): parameters of "
            f"{int((first_bad >= 0).sum())} of {theta.shape[0]} replicas became inf or nan, or their summed "
            f"magnitude exceeded blowup={blowup:g}. Lower the learning rate (a quadratic valley of curvature a is stable only "
            "for lr < 2/a) or the noise."
        )

    for t in step_range(n_steps, progress, name):
        eta = schedule(t)
        g = gradient_estimate(theta, generator)
        if t >= record_from and (t - record_from) % every == 0:
            state = StepState(theta=theta, gradient=g, step=t, lr=eta)
            for key, fn in observables.items():
                recorded[key].append(fn(state).detach().clone())
            if record_theta:
                recorded["theta"].append(theta.clone())
            steps.append(t)
            lrs.append(eta)
        new = update(theta, g, eta, generator)
        if boundary is not None:
            new = boundary(new)
        if absorb is not None:
            frozen = passage >= 0
            new = torch.where(frozen[:, None], theta, new)
            hit = absorb(new) & ~frozen
            passage = torch.where(hit, t + 1, passage)  # passage time in steps taken
            if (t + 1) % check_every == 0 and bool((passage >= 0).all()):
                theta = new
                break
        theta = new
        # One cheap reduction per step: a NaN fails the comparison, an inf or a blow-up exceeds it.
        bad = ~(theta.abs().sum(-1) <= blowup)
        first_bad = torch.where(bad & (first_bad < 0), t, first_bad)
        if (t + 1) % check_every == 0 and bool((first_bad >= 0).any()):
            fail(t)
    if bool((first_bad >= 0).any()):
        fail(n_steps - 1)

    def stack(values: list[torch.Tensor]) -> torch.Tensor:
        if values:
            return torch.stack(values)
        return torch.empty((0, theta.shape[0]), dtype=theta.dtype, device=theta.device)

    return Trajectory(
        theta=theta,
        steps=torch.tensor(steps, dtype=torch.long),
        lrs=torch.tensor(lrs, dtype=torch.float64),
        records={k: stack(v) for k, v in recorded.items()},
        first_passage=passage if absorb is not None else None,
    )


def _noisy(gradient: GradientFn, noise: GaussianNoise | None):
    if noise is None:
        return gradient
    if not isinstance(noise, GaussianNoise):
        raise TypeError(
            "noise must be made by isotropic_noise, hessian_noise or covariance_noise; "
            f"got {type(noise).__name__}."
        )

    def estimate(theta: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        g = gradient(theta, gen)
        return g + noise.sample(tuple(theta.shape), gen, theta.dtype, theta.device)

    return estimate


_RUN_DOC = """
    The first four arguments are positional, the rest keyword-only.

    Args:
        gradient: a landscape (with ``.grad(theta)``) or a function ``gradient(theta, generator)``
            returning a gradient estimate of shape ``(R, D)``.
        theta0: ``(R, D)`` initial parameters, one row per replica.
        lr: learning rate (a number >= 0) or a schedule from :mod:`ntcourse.schedules`.
        n_steps: number of updates.
        noise: optional additive Gaussian gradient noise (:func:`isotropic_noise`,
            :func:`hessian_noise`, :func:`covariance_noise`).
        generator: ``torch.Generator`` on the device of ``theta0`` (default: a fresh one seeded
            from torch's global seed, which :func:`ntcourse.runtime.setup` sets).
        observables: name -> function of a :class:`StepState` returning ``(R, ...)``.
        every: record every ``every`` steps, starting at step ``record_from``.
        record_theta: also record the parameters under the name ``"theta"``.
        boundary: function applied to the parameters after every update, e.g. a reflection
            ``lambda th: th.abs()``.
        absorb: function of the parameters returning ``(R,)`` booleans: a replica that enters
            this set is frozen and its first-passage step is stored in
            ``Trajectory.first_passage``; the run ends early once every replica is absorbed
            (checked every ``check_every`` steps).
        blowup: a replica whose summed parameter magnitude exceeds this counts as diverged.
        check_every: how often (in steps) to look for divergence; the error names the exact step.
        progress: show a progress bar (default: only at ``full`` scale).

    Returns:
        :class:`Trajectory`.

    Raises:
        DivergenceError: when a replica's parameters become inf/nan or exceed ``blowup``; the
            message names the step and the learning rate.
"""


def sgd(gradient, theta0, lr, n_steps: int, *, noise: GaussianNoise | None = None, **options) -> Trajectory:
    r"""Run SGD, :math:`\theta_{t+1}=\theta_t-\eta_t(g_t+\xi_t)`, on all replicas at once."""

    def update(theta, g, eta, gen):
        return theta - eta * g

    return _run("SGD", update, _noisy(_as_gradient_fn(gradient), noise), theta0, lr, n_steps, **options)


def signgd(gradient, theta0, lr, n_steps: int, *, noise: GaussianNoise | None = None, **options) -> Trajectory:
    r"""Run SignGD, :math:`\theta_{t+1}=\theta_t-\eta_t\,\mathrm{sign}(g_t+\xi_t)` (coordinate-wise)."""

    def update(theta, g, eta, gen):
        return theta - eta * torch.sign(g)

    return _run("SignGD", update, _noisy(_as_gradient_fn(gradient), noise), theta0, lr, n_steps, **options)


def langevin(gradient, theta0, lr, n_steps: int, *, temperature: float, **options) -> Trajectory:
    r"""Euler--Maruyama for :math:`d\theta=-\nabla L\,d\tau+\sqrt{2T}\,dW` with time step ``lr``.

    ``temperature`` is :math:`T \ge 0` (units of loss). With step :math:`h=\eta` this is SGD
    with isotropic noise of variance :math:`2T/\eta` per coordinate, i.e. :math:`T=\eta\sigma^2/2`.
    """
    temperature = check.real("temperature", temperature, nonnegative=True)

    def update(theta, g, eta, gen):
        kick = torch.randn(theta.shape, generator=gen, dtype=theta.dtype, device=theta.device)
        return theta - eta * g + math.sqrt(2.0 * temperature * eta) * kick

    return _run("Langevin", update, _as_gradient_fn(gradient), theta0, lr, n_steps, **options)


for _fn in (sgd, signgd, langevin):
    _fn.__doc__ = (_fn.__doc__ or "") + "\n" + _RUN_DOC
