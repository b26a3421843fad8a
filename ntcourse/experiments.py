"""Named experiments: one configuration per scale, run headless and stored in the cache.

A full-scale experiment can take an hour on a GPU. It is registered here once, by name, with its
``quick`` and ``full`` configurations and a ``compute`` function; :func:`result` returns the stored
result when the cache holds one for the same configuration and package version, and otherwise
runs it and stores it. Notebooks call :func:`result`; a GPU run outside a notebook is
``python -m ntcourse run NAME --scale full --device cuda``, which fills the same cache entry.

The configuration (which includes the seed) is the cache key; the device is not, so a result
computed on a GPU is reused on a laptop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from . import cache
from .runtime import SCALES, get_device, get_scale, get_seed, seed_everything

Compute = Callable[[dict, torch.device, bool], Mapping[str, torch.Tensor]]


@dataclass(frozen=True)
class Experiment:
    """A named experiment.

    Attributes:
        name: the cache name and the command-line name (lowercase, hyphens).
        description: one line for ``python -m ntcourse list``.
        configs: scale (``"quick"``, ``"full"``) -> configuration dict of numbers and strings.
        compute: ``compute(config, device, progress) -> dict of tensors``; it must seed itself from
            ``config["seed"]`` (``ntcourse.runtime.seed_everything``) so a result depends on its
            configuration only.
        chapter: where the course uses it (for the listing).
    """

    name: str
    description: str
    configs: Mapping[str, Mapping] = field(hash=False)
    compute: Compute = field(hash=False)
    chapter: str = ""

    def __post_init__(self):
        missing = [s for s in SCALES if s not in self.configs]
        if missing:
            raise ValueError(f"experiment {self.name!r} has no configuration for scale(s) {missing}.")
        if not callable(self.compute):
            raise TypeError(f"experiment {self.name!r}: compute must be a function.")

    def config(self, scale: str | None = None, seed: int | None = None) -> dict:
        """The configuration at ``scale`` (default: ``NTCOURSE_SCALE``) with the seed filled in."""
        return {**self.configs[get_scale(scale)], "seed": get_seed(seed)}


REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment, registry: dict[str, Experiment] | None = None) -> Experiment:
    """Add ``experiment`` to ``registry`` (default: the course's); a name can be registered once."""
    registry = REGISTRY if registry is None else registry
    if experiment.name in registry and registry[experiment.name] is not experiment:
        raise ValueError(f"an experiment named {experiment.name!r} is already registered.")
    registry[experiment.name] = experiment
    return experiment


def get(name: str, registry: dict[str, Experiment] | None = None) -> Experiment:
    """The experiment called ``name``; the error lists the known names."""
    registry = REGISTRY if registry is None else registry
    if name not in registry:
        raise KeyError(f"no experiment named {name!r}; known: {sorted(registry)}.")
    return registry[name]


def result(name: str, scale: str | None = None, *, seed: int | None = None, device=None, recompute: bool = False,
           progress: bool | None = None, root=None, registry: dict[str, Experiment] | None = None,
           ) -> dict[str, torch.Tensor]:
    """The result of experiment ``name`` at ``scale``: from the cache, or computed now and stored.

    Prints one line saying which (see :func:`ntcourse.cache.cached`). ``progress=None`` shows a
    progress bar at full scale.
    """
    exp = get(name, registry)
    scale = get_scale(scale)
    config = exp.config(scale, seed)
    dev = get_device(device)
    show = scale == "full" if progress is None else progress

    def compute():
        start = time.perf_counter()
        out = dict(exp.compute(config, dev, show))
        out["seconds"] = torch.tensor(time.perf_counter() - start)
        return out

    return cache.cached(name, config, compute, root=root, recompute=recompute)


def is_cached(name: str, scale: str | None = None, *, seed: int | None = None, root=None,
              registry: dict[str, Experiment] | None = None) -> bool:
    """Whether a (readable) stored result exists, without computing anything."""
    exp = get(name, registry)
    return cache.load(name, exp.config(scale, seed), root) is not None


# --- the course's experiments -------------------------------------------------------------------

def _digits_spectrum(config: dict, device: torch.device, progress: bool) -> dict[str, torch.Tensor]:
    """Train an MLP on digits with minibatch SGD, then measure its Hessian spectrum (appendix B)."""
    from . import curvature, data, models, train

    seed_everything(config["seed"])
    ds = data.digits("train", dtype=torch.float64)
    x, y = ds.x.to(device), ds.y.to(device)
    net = models.mlp([64, config["width"], config["width"], 10], activation="tanh").double().to(device)
    ce = torch.nn.functional.cross_entropy
    params, hist = train.train(net, ce, x, y, config["lr"], config["steps"], batch_size=config["batch_size"],
                               generator=torch.Generator(device=device).manual_seed(config["seed"]),
                               callbacks={"loss": lambda p: ce(torch.func.functional_call(net, p, (x,)), y)},
                               every=max(1, config["steps"] // 50), progress=progress)
    net.load_state_dict(params, strict=False)
    loss_fn, theta = curvature.flat_loss(net, ce, x, y)
    g = torch.Generator(device=device).manual_seed(config["seed"] + 1)
    top, _ = curvature.lanczos(loss_fn, theta, config["top_k"], n_iter=config["lanczos_iter"], generator=g)
    sd = curvature.spectral_density(loss_fn, theta, config["slq_probes"], config["slq_iter"], generator=g)
    return {"steps": hist.steps, "loss": hist["loss"], "top_eigenvalues": top, "slq_nodes": sd.nodes,
            "slq_weights": sd.weights, "n_params": torch.tensor(theta.numel())}


register(Experiment(
    name="digits-hessian-spectrum",
    description="Hessian spectrum (top eigenvalues and SLQ density) of an MLP trained on digits",
    configs={
        "quick": {"width": 16, "lr": 0.1, "batch_size": 32, "steps": 300, "top_k": 5, "lanczos_iter": 40,
                  "slq_probes": 4, "slq_iter": 30},
        "full": {"width": 128, "lr": 0.1, "batch_size": 32, "steps": 20_000, "top_k": 20, "lanczos_iter": 200,
                 "slq_probes": 32, "slq_iter": 120},
    },
    compute=_digits_spectrum,
    chapter="Appendix B, Curvature toolkit",
))
