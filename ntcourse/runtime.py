"""Device, seed and scale: the run-time settings every notebook starts from.

This module is the package's ground floor: the only other module it touches is
``plotting``, imported lazily by :func:`setup` to apply the house style. Settings come from environment
variables so that a notebook, a test run and a command line see the same values:

* ``NTCOURSE_SCALE``: ``quick`` (default: every notebook in under 60 s on 2 CPU cores) or
  ``full`` (paper scale, meant for one GPU);
* ``NTCOURSE_SEED``: integer seed, default 0;
* ``NTCOURSE_DEVICE``: ``cuda``, ``cuda:1``, ``mps`` or ``cpu``; default: CUDA, then Apple MPS, then CPU.

On the CPU at quick scale, :func:`setup` uses one torch thread: the course's batched
tensors are small, and there one thread is as fast as two while two threads on a shared
2-core machine sometimes stall badly (measured: the same SignGD run took 32 s with one
thread and 162 s with two).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

SCALES = ("quick", "full")
DEFAULT_SEED = 0
REPOSITORY_URL = "https://github.com/entropic-forces-course/entropic-forces"
"""Where Colab installs the package from; keep in step with ``repository.url`` in ``_config.yml``."""

T = TypeVar("T")


@dataclass(frozen=True)
class Runtime:
    """What :func:`setup` chose: the device, the scale, the seed."""

    device: torch.device
    scale: str
    seed: int

    def describe(self) -> str:
        return (
            f"ntcourse: device={self.device}, scale={self.scale}, seed={self.seed}, "
            f"torch {torch.__version__}"
        )


def get_scale(scale: str | None = None) -> str:
    """Return the experiment scale, ``'quick'`` or ``'full'``.

    An explicit ``scale`` wins; otherwise ``NTCOURSE_SCALE``; otherwise ``'quick'``.
    """
    value = scale if scale is not None else os.environ.get("NTCOURSE_SCALE", "quick")
    value = str(value).strip().lower()
    if value not in SCALES:
        source = "scale" if scale is not None else "NTCOURSE_SCALE"
        raise ValueError(
            f"{source}={value!r} is not a known scale; use one of {SCALES} "
            "('quick' runs every notebook in under a minute on a CPU, 'full' reproduces the paper scale on a GPU)."
        )
    return value


def by_scale(quick: T, full: T, scale: str | None = None) -> T:
    """Pick the quick-mode or the full-mode value of a setting, e.g. ``by_scale(quick=2_000, full=200_000)``."""
    return quick if get_scale(scale) == "quick" else full


def get_seed(seed: int | None = None) -> int:
    """Return the seed: explicit ``seed``, else ``NTCOURSE_SEED``, else 0."""
    if seed is None:
        raw = os.environ.get("NTCOURSE_SEED", str(DEFAULT_SEED))
        try:
            seed = int(raw)
        except ValueError:
            raise ValueError(f"NTCOURSE_SEED={raw!r} is not an integer; set it to e.g. 0, 1, 2.") from None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer.")
    return int(seed)


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Choose the device: explicit ``device``, else ``NTCOURSE_DEVICE``, else CUDA, MPS, CPU in that order.

    An explicitly requested accelerator that is not available raises an error rather than
    silently falling back to the CPU.
    """
    requested = device if device is not None else os.environ.get("NTCOURSE_DEVICE") or None
    if requested is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    source = "device" if device is not None else "NTCOURSE_DEVICE"
    try:
        dev = torch.device(requested)
    except (RuntimeError, TypeError):
        raise ValueError(f"{source}={requested!r} is not a device; use 'cpu', 'cuda', 'cuda:0' or 'mps'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source}={requested!r} but CUDA is not available here; use 'cpu' or unset {source}.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"{source}={requested!r} but Apple MPS is not available here; use 'cpu' or unset {source}.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{source}={requested!r}: only 'cpu', 'cuda' and 'mps' are supported.")
    return dev


def seed_everything(seed: int | None = None, deterministic: bool = True) -> int:
    """Seed Python, NumPy and torch (all devices); return the seed used.

    With ``deterministic=True`` torch is asked for deterministic algorithms where it has
    them (``warn_only``, so an operation without a deterministic version still runs) and
    cuDNN autotuning is switched off.
    """
    seed = get_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def generator(seed: int | None = None, device: str | torch.device | None = None) -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed`` (default: the run's seed).

    Experiments take a generator rather than relying on the global RNG, so two experiments in
    one notebook do not depend on the order they run in.
    """
    dev = get_device(device)
    gen = torch.Generator(device=dev)
    gen.manual_seed(get_seed(seed))
    return gen


def step_range(n_steps: int, progress: bool | None = None, desc: str = ""):
    """``range(n_steps)``, wrapped in a tqdm progress bar when ``progress`` is true.

    ``progress=None`` shows the bar at full scale only: quick runs are short, and a bar left in a
    built page is noise.
    """
    show = progress if progress is not None else get_scale() == "full"
    if not show:
        return range(n_steps)
    from tqdm.auto import tqdm

    return tqdm(range(n_steps), desc=desc, leave=False)


def setup(
    seed: int | None = None,
    device: str | torch.device | None = None,
    scale: str | None = None,
    style: bool = True,
    quiet: bool = False,
) -> Runtime:
    """Seed everything, choose the device and scale, apply the plot style, print one line.

    Call this once at the top of every notebook. Returns a :class:`Runtime` record.
    """
    rt = Runtime(device=get_device(device), scale=get_scale(scale), seed=seed_everything(seed))
    if rt.device.type == "cpu" and rt.scale == "quick":
        torch.set_num_threads(1)
    if style:
        from . import plotting  # lazy: the one upward import, so computation never loads matplotlib

        plotting.apply_style()
    if not quiet:
        print(rt.describe())
    return rt
