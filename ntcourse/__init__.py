"""ntcourse: the helper package of the course "Entropic Forces in Deep Learning".

Notebooks start with ``import ntcourse as nt; nt.setup()`` and use the names re-exported
here. Modules, from the ground up: ``runtime`` (device, seed, scale); ``landscapes``,
``schedules`` and ``data`` (analytic losses, learning-rate schedules, datasets); ``dynamics`` and
``models`` (batched SGD/SignGD/Langevin; small networks and vmapped ensembles); ``train``, ``thermo``,
``curvature``, ``noise`` and ``paths`` (what the labs measure); ``cache`` and ``experiments`` (named long runs and
their stored results, run headless by ``python -m ntcourse run NAME``);
``plotting``, ``widgets``, ``report`` and ``checks`` (what a reader sees).
"""

from . import (cache, checks, curvature, data, dynamics, experiments, landscapes, models, noise, paths, plotting, report,
               runtime, schedules, thermo, train, widgets)
from .dynamics import (
    DivergenceError,
    GaussianNoise,
    StepState,
    Trajectory,
    covariance_noise,
    hessian_noise,
    isotropic_noise,
    langevin,
    sgd,
    signgd,
)
from .landscapes import (CurvedValley, Quadratic, RiverValley, curved_valley, diagonal_quadratic, exponential_river, flat_path,
                         parabolic_valley, quadratic, river_valley)
from .plotting import CYCLE, PALETTE, apply_style
from .report import Comparison, compare, compare_table, glue
from .runtime import Runtime, by_scale, generator, get_device, get_scale, get_seed, seed_everything, setup
from .schedules import Constant, Cosine, Exponential, InverseTime, Linear, Schedule, WarmupStableDecay, as_schedule
from .thermo import Estimate, continuous_lyapunov, discrete_lyapunov, replica_estimate
from .widgets import explorer

__version__ = "0.1.0"

__all__ = [
    "CYCLE", "cache", "experiments", "paths", "checks", "curvature", "data", "models", "noise", "train", "Comparison", "Constant", "Cosine", "CurvedValley", "curved_valley", "flat_path", "parabolic_valley", "RiverValley", "river_valley", "exponential_river", "DivergenceError", "Estimate", "Exponential", "GaussianNoise",
    "InverseTime", "Linear", "PALETTE", "Quadratic", "Runtime", "Schedule", "StepState", "Trajectory",
    "WarmupStableDecay", "apply_style", "as_schedule", "by_scale", "compare", "compare_table",
    "continuous_lyapunov", "covariance_noise", "diagonal_quadratic", "discrete_lyapunov", "dynamics",
    "explorer", "generator", "get_device", "get_scale", "get_seed", "glue", "hessian_noise",
    "isotropic_noise", "landscapes", "langevin", "plotting", "quadratic", "replica_estimate", "report",
    "runtime", "schedules", "seed_everything", "setup", "sgd", "signgd", "thermo", "widgets",
]
