r"""Benchmarks of the package's vectorised code against the obvious alternatives, side by side.

Run ``python -m ntcourse.bench`` (``--quick`` for CI-sized runs, ``--json PATH`` to keep the
results, ``--device``, ``--threads``, ``--only``); ``scripts/bench`` also installs the peer library.
Each benchmark times *ours* and a *reference* in the same process and checks that both compute
the same thing:

* ``dynamics``: SGD on a 2-D landscape for ``R`` replicas in one ``(R, D)`` tensor
  (:func:`ntcourse.dynamics.sgd`) versus a Python loop calling the same function for one replica at a
  time. Both read the same pre-drawn gradient noise, so the trajectories must agree to rounding -- which
  shows the comparison is fair. Target: 50x.
* ``ensemble``: full-batch training of ``M`` small MLPs at once with ``vmap``
  (:func:`ntcourse.train.train_ensemble`) versus training each model separately through the same
  function with ``M = 1``; the trained parameters must agree. Target: 10x.
* ``lanczos``: the top ``k`` Hessian eigenvalues of an MLP by Lanczos (:func:`ntcourse.curvature.lanczos`)
  versus the dense Hessian (assembled from the same Hessian-vector products, in ``vmap`` chunks) and
  ``torch.linalg.eigvalsh``; eigenvalues within ``1e-3`` relative. Target: 100x.
* ``peer``: the same eigenvalues from the maintained peer library PyHessian (power iteration with
  deflation); both within ``1e-3`` of the dense values, and ours not slower (target: 1x). Reported as
  skipped when the peer is not importable: it is installed for the benchmark only
  (``requirements-bench.txt``), never in ``requirements.txt``.

Every result records the sizes, the seconds of each side (best of ``repeats`` runs, measured with
``time.perf_counter`` after a device synchronisation), the ratio ``reference / ours``, the target,
whether it was met, and the correctness check. Only a failed correctness check makes the exit
status non-zero: speed on a shared machine is noisy, so a missed target is reported, not fatal.

The JSON report (``--json PATH``; :func:`run_suite` returns the same dict) has the top-level fields
``schema``, ``suite``, ``mode`` (``quick``/``full``), ``seed``, ``started``, ``seconds``, ``environment``
(``torch``, ``python``, ``platform``, ``device``, ``device_name``, ``cpu_count``, ``cpus_usable``,
``torch_threads``, ``torch_interop_threads``, ``load_average_before``/``_after``), ``all_checks_passed``,
``targets_met``, ``targets_total`` and ``benchmarks``: one entry per benchmark with ``name``, ``title``,
``status`` (``ok`` or ``skipped``, then with a ``reason``), ``sizes``, ``ours`` and ``reference`` (each
``label``, ``seconds`` -- the best run -- and ``runs``), ``ratio`` (reference seconds / ours), ``target``,
``met``, ``check`` (``name``, ``value``, ``tolerance``, ``passed``) and ``details`` (e.g. the number of
Hessian-vector products each side used and the eigenvalues).
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import importlib
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.func import vmap

from . import curvature, dynamics, landscapes, runtime, train
from . import models as nt_models

SCHEMA = 1
NAMES = ("dynamics", "ensemble", "lanczos", "peer")
TARGETS = {"dynamics": 50.0, "ensemble": 10.0, "lanczos": 100.0, "peer": 1.0}
EIGEN_RTOL = 1e-3
PEER = "PyHessian"  # distribution name; the module is ``pyhessian``

# Sizes of each benchmark. ``quick`` runs the whole suite in well under a minute on 2 CPU cores;
# ``full`` is the specification (R = 1024 replicas, M = 64 models, >= 20,000 parameters).
CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "dynamics": dict(replicas=1024, steps=40, every=10, repeats=3, reference_repeats=1),
        "ensemble": dict(models=64, steps=40, width=16, n_data=64, repeats=3, reference_repeats=1),
        "lanczos": dict(sizes=(16, 64, 48, 1), n_data=256, k=5, n_iter=None, chunk=128, repeats=3),
        "peer": dict(sizes=(16, 64, 48, 1), n_data=256, k=5, n_iter=None, tol=1e-6, max_iter=1000, repeats=2),
    },
    "full": {
        "dynamics": dict(replicas=1024, steps=200, every=10, repeats=3, reference_repeats=1),
        "ensemble": dict(models=64, steps=200, width=16, n_data=64, repeats=3, reference_repeats=1),
        "lanczos": dict(sizes=(32, 128, 128, 1), n_data=256, k=5, n_iter=None, chunk=128, repeats=3),
        "peer": dict(sizes=(32, 128, 128, 1), n_data=256, k=5, n_iter=None, tol=1e-6, max_iter=1000, repeats=2),
    },
}


# --------------------------------------------------------------------------- timing helpers


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _timed(fn: Callable[[], Any], repeats: int, device: torch.device) -> tuple[Any, list[float]]:
    """Run ``fn`` ``repeats`` times; return the last result and the wall-clock seconds of each run."""
    runs, out = [], None
    for _ in range(max(1, int(repeats))):
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        runs.append(time.perf_counter() - start)
    return out, runs


def _side(label: str, runs: Sequence[float]) -> dict[str, Any]:
    return {"label": label, "seconds": min(runs), "runs": [float(r) for r in runs]}


def _result(name: str, title: str, sizes: dict, ours: dict, reference: dict, check: dict,
            details: dict | None = None) -> dict[str, Any]:
    ratio = reference["seconds"] / ours["seconds"] if ours["seconds"] > 0 else math.inf
    return {
        "name": name,
        "title": title,
        "status": "ok",
        "sizes": sizes,
        "ours": ours,
        "reference": reference,
        "ratio": ratio,
        "target": TARGETS[name],
        "met": bool(ratio >= TARGETS[name]),
        "check": check,
        "details": details or {},
    }


def _skipped(name: str, title: str, reason: str, sizes: dict | None = None) -> dict[str, Any]:
    return {"name": name, "title": title, "status": "skipped", "reason": reason, "sizes": sizes or {},
            "ours": None, "reference": None, "ratio": None, "target": TARGETS[name], "met": None,
            "check": {"name": "skipped", "value": None, "tolerance": None, "passed": None}, "details": {}}


def _check(name: str, value: float, tolerance: float, **extra) -> dict[str, Any]:
    return {"name": name, "value": float(value), "tolerance": float(tolerance),
            "passed": bool(math.isfinite(value) and value <= tolerance), **extra}


# --------------------------------------------------------------------------- 1. replica dynamics


def bench_dynamics(replicas: int = 1024, steps: int = 200, every: int = 10, repeats: int = 3,
                   reference_repeats: int = 1, device=None, seed: int = 0, lr: float = 0.05,
                   sigma: float = 1.0) -> dict[str, Any]:
    """SGD with additive gradient noise on the 2-D parabolic valley: ``R`` replicas batched versus looped.

    The noise is drawn once, ``(steps, R, D)``, and read by both sides (replica ``r`` sees row ``r``),
    so the batched and the looped run must produce the same trajectory, recorded every ``every`` steps.
    """
    dev = runtime.get_device(device)
    land = landscapes.parabolic_valley(1, a=3.0)  # theta = (y, x): D = 2
    dim = land.dim
    gen = torch.Generator(device=dev).manual_seed(seed)
    theta0 = 0.5 * torch.randn(replicas, dim, generator=gen, dtype=torch.float64, device=dev)
    noise = sigma * torch.randn(steps, replicas, dim, generator=gen, dtype=torch.float64, device=dev)
    unused = torch.Generator(device=dev).manual_seed(seed)  # the gradient below draws nothing

    def run(rows: slice) -> dynamics.Trajectory:
        step = [0]

        def gradient(theta, _gen):
            g = land.grad(theta) + noise[step[0], rows]
            step[0] += 1
            return g

        return dynamics.sgd(gradient, theta0[rows], lr, steps, every=every, record_theta=True,
                            generator=unused, progress=False)

    batched, ours_runs = _timed(lambda: run(slice(None)), repeats, dev)
    looped, ref_runs = _timed(lambda: [run(slice(r, r + 1)) for r in range(replicas)], reference_repeats, dev)

    path_b = torch.cat([batched["theta"], batched.theta[None]])
    path_l = torch.cat([torch.cat([t["theta"] for t in looped], dim=1),
                        torch.cat([t.theta for t in looped])[None]])
    diff = float((path_b - path_l).abs().max())
    scale = float(path_b.abs().max())
    return _result(
        "dynamics", "replica dynamics: batched vs loop",
        sizes={"replicas": replicas, "dim": dim, "steps": steps, "landscape": "parabolic_valley(n=1, a=3)", "dtype": "float64"},
        ours=_side("ntcourse.dynamics.sgd on one (R, D) tensor", ours_runs),
        reference=_side(f"Python loop: sgd on each of the {replicas} replicas", ref_runs),
        check=_check("max |batched - looped| over the recorded trajectory / max |theta|", diff / max(scale, 1e-300),
                     1e-12, bitwise_identical=bool(diff == 0.0)),
        details={"lr": lr, "noise_std": sigma, "recorded_every": every,
                 "seconds_per_step_ours": min(ours_runs) / steps,
                 "seconds_per_replica_step_reference": min(ref_runs) / (steps * replicas)},
    )


# --------------------------------------------------------------------------- 2. ensemble training


def bench_ensemble(models: int = 64, steps: int = 200, width: int = 16, n_data: int = 64, repeats: int = 3,
                   reference_repeats: int = 1, device=None, seed: int = 0, lr: float = 0.05) -> dict[str, Any]:
    """Full-batch GD on 1-D regression for ``M`` MLPs ``1-width-width-1``: one vmapped run versus ``M`` runs.

    The rate is kept in the stable regime: near the edge of stability (``lr = 0.1`` here) float32 rounding
    differences between the batched and the single-model matrix products grow over a few hundred steps, and
    the two sides would no longer train the same models.
    """
    dev = runtime.get_device(device)
    x = torch.linspace(-2.0, 2.0, n_data, device=dev)[:, None]
    y = torch.sin(2.0 * x)
    sizes = [1, width, width, 1]
    build = lambda: nt_models.mlp(sizes)  # noqa: E731
    params, buffers, _ = nt_models.ensemble(build, models, generator_seed=seed)
    params = {k: v.to(dev) for k, v in params.items()}
    buffers = {k: v.to(dev) for k, v in buffers.items()}
    template = build().to(dev)
    loss = torch.nn.functional.mse_loss

    def one(p, b):
        return train.train_ensemble(template, p, loss, x, y, lr, steps, buffers=b, progress=False)[0]

    def looped():
        outs = [one({k: v[m:m + 1] for k, v in params.items()}, {k: v[m:m + 1] for k, v in buffers.items()})
                for m in range(models)]
        return {k: torch.cat([o[k] for o in outs]) for k in params}

    together, ours_runs = _timed(lambda: one(params, buffers), repeats, dev)
    separate, ref_runs = _timed(looped, reference_repeats, dev)
    diff = max(float((together[k] - separate[k]).abs().max()) for k in params)
    scale = max(float(together[k].abs().max()) for k in params)
    n_params = sum(v[0].numel() for v in params.values())
    return _result(
        "ensemble", "ensemble training: vmap vs loop",
        sizes={"models": models, "params_per_model": n_params, "layers": sizes, "n_data": n_data,
               "steps": steps, "dtype": str(together[next(iter(together))].dtype).replace("torch.", "")},
        ours=_side(f"train_ensemble on all {models} models (vmap)", ours_runs),
        reference=_side(f"Python loop: train_ensemble on each model (M = 1)", ref_runs),
        check=_check("max |vmap - loop| over trained parameters / max |param|", diff / max(scale, 1e-300), 1e-4),
        details={"lr": lr, "batch": "full"},
    )


# --------------------------------------------------------------------------- 3./4. Hessian eigenvalues


def hessian_problem(sizes: Sequence[int] = (32, 128, 128, 1), n_data: int = 256, device=None, seed: int = 0):
    """A tanh MLP (float64) on a synthetic regression task, as ``(model, x, y, loss_fn, theta)``.

    The inputs have anisotropic scales (``i^{-1/2}`` on coordinate ``i``), which separates the top of
    the Hessian spectrum, so that every method converges to the top eigenvalues in a modest number of products.
    """
    dev = runtime.get_device(device)
    gen = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = nt_models.mlp(list(sizes)).double().to(dev)
    finally:
        torch.random.set_rng_state(torch_state)
    d_in = sizes[0]
    scales = torch.arange(1, d_in + 1, dtype=torch.float64) ** -0.5
    x = torch.randn(n_data, d_in, generator=gen, dtype=torch.float64) * scales
    y = torch.sin(x @ torch.randn(d_in, sizes[-1], generator=gen, dtype=torch.float64))
    x, y = x.to(dev), y.to(dev)
    loss_fn, theta = curvature.flat_loss(model, torch.nn.functional.mse_loss, x, y)
    return model, x, y, loss_fn, theta


def dense_top_eigenvalues(loss_fn, theta: torch.Tensor, k: int, chunk: int = 128) -> tuple[torch.Tensor, dict]:
    """Top ``k`` eigenvalues (descending) of the dense Hessian built from ``D`` Hessian-vector products.

    The products are the ones :func:`ntcourse.curvature.lanczos` uses, evaluated ``chunk`` basis vectors
    at a time under ``vmap``; the matrix is filled in place (``D^2`` floats) and handed to ``eigvalsh``.
    Returns the eigenvalues and ``{"build_s", "eigvalsh_s"}``.
    """
    d = theta.numel()
    product = vmap(lambda v: curvature._hvp(loss_fn, theta, v))
    start = time.perf_counter()
    h = torch.empty(d, d, dtype=theta.dtype, device=theta.device)
    for s in range(0, d, chunk):
        e = min(d, s + chunk)
        basis = torch.zeros(e - s, d, dtype=theta.dtype, device=theta.device)
        basis[torch.arange(e - s), torch.arange(s, e)] = 1.0
        h[s:e] = product(basis)
    _sync(theta.device)
    built = time.perf_counter()
    evals = torch.linalg.eigvalsh(h)  # uses the lower triangle; H is symmetric to rounding
    _sync(theta.device)
    done = time.perf_counter()
    del h
    return evals.flip(0)[:k].double(), {"build_s": built - start, "eigvalsh_s": done - built}


def _relative_error(values: torch.Tensor, reference: torch.Tensor) -> float:
    values, reference = values.double().cpu(), reference.double().cpu()
    return float(((values - reference).abs() / reference.abs().clamp_min(1e-300)).max())


def _residual(loss_fn, theta: torch.Tensor, evals: torch.Tensor, evecs: torch.Tensor) -> float:
    """``max_i ||H u_i - lambda_i u_i|| / |lambda_i|`` for unit eigenvectors (columns of ``evecs``)."""
    u = (evecs / evecs.norm(dim=0, keepdim=True)).T.to(theta)
    hu = vmap(lambda v: curvature._hvp(loss_fn, theta, v))(u).double()
    r = (hu - evals.to(hu)[:, None] * u.double()).norm(dim=1) / evals.to(hu).abs()
    return float(r.max())


def _counted(loss_fn) -> tuple[Callable, list[int]]:
    """``loss_fn`` wrapped to count its evaluations: one per Hessian-vector product (or per ``vmap`` batch of them)."""
    calls = [0]

    def wrapped(theta):
        calls[0] += 1
        return loss_fn(theta)

    return wrapped, calls


def _ours(loss_fn, theta, k: int, n_iter: int | None, repeats: int, seed: int):
    """Time :func:`ntcourse.curvature.lanczos`; return ``(evals, evecs)``, the seconds, and the products of one run."""
    counted, calls = _counted(loss_fn)
    gen = torch.Generator(device=theta.device).manual_seed(seed)

    def once():
        calls[0] = 0
        return curvature.lanczos(counted, theta, k, n_iter=n_iter, generator=gen)

    out, runs = _timed(once, repeats, theta.device)
    return out, runs, calls[0]


def bench_lanczos(sizes: Sequence[int] = (32, 128, 128, 1), n_data: int = 256, k: int = 5, n_iter: int | None = None,
                  chunk: int = 128, repeats: int = 3, device=None, seed: int = 0) -> dict[str, Any]:
    """Top-``k`` Hessian eigenvalues: Lanczos (``n_iter`` products, default the library's) versus dense ``eigvalsh`` (``D`` products)."""
    dev = runtime.get_device(device)
    _, _, _, loss_fn, theta = hessian_problem(sizes, n_data, dev, seed)
    d = theta.numel()
    (evals, evecs), ours_runs, hvps = _ours(loss_fn, theta, k, n_iter, repeats, seed)
    (dense, parts), ref_runs = _timed(lambda: dense_top_eigenvalues(loss_fn, theta, k, chunk), 1, dev)
    err = _relative_error(evals, dense)
    return _result(
        "lanczos", "top-k Hessian eigenvalues: Lanczos vs dense",
        sizes={"params": d, "layers": list(sizes), "n_data": n_data, "k": k, "dtype": "float64"},
        ours=_side(f"curvature.lanczos, {hvps} Hessian-vector products", ours_runs),
        reference=_side(f"dense Hessian from {d} products (vmap chunks of {chunk}) + eigvalsh", ref_runs),
        check=_check("max relative eigenvalue error, Lanczos vs dense", err, EIGEN_RTOL),
        details={"hvps_ours": hvps, "hvps_reference": d, "dense_build_s": parts["build_s"],
                 "dense_eigvalsh_s": parts["eigvalsh_s"], "dense_bytes": d * d * theta.element_size(),
                 "eigenvalues_ours": evals.tolist(), "eigenvalues_dense": dense.tolist(),
                 "lanczos_max_relative_residual": _residual(loss_fn, theta, evals, evecs)},
    )


def _import_peer():
    """The peer module ``pyhessian`` and its version, or ``(None, reason)``."""
    try:
        import pyhessian  # noqa: F401
        from pyhessian import hessian as _hessian_class  # noqa: F401
    except ImportError as exc:
        return None, f"peer not installed ({PEER}: {exc}; scripts/bench installs requirements-bench.txt)"
    try:
        from importlib.metadata import version

        ver = version(PEER)
    except Exception:  # the distribution metadata may be missing on a bare PYTHONPATH
        ver = "unknown"
    return pyhessian, ver


def bench_peer(sizes: Sequence[int] = (32, 128, 128, 1), n_data: int = 256, k: int = 5, n_iter: int | None = None,
               tol: float = 1e-6, max_iter: int = 1000, repeats: int = 2, device=None, seed: int = 0,
               reference: Sequence[float] | None = None) -> dict[str, Any]:
    """Top-``k`` Hessian eigenvalues: ours (Lanczos) versus PyHessian's power iteration with deflation.

    ``reference`` holds the exact top eigenvalues of the same problem (from :func:`bench_lanczos`); without it
    they are computed here with :func:`dense_top_eigenvalues`. The two methods converge differently, so each
    runs at a setting that makes it accurate: Lanczos for ``n_iter`` products (default: the library's,
    ``max(3k, 30)``), PyHessian until two successive Rayleigh quotients differ by less than ``tol`` (relative)
    for each eigenvalue -- its default ``1e-3`` misses three digits (errors of several ``1e-3`` on these
    problems), ``1e-6`` gives about ``1e-5``. Both are checked against the reference; the products each used are
    counted (ours by counting evaluations of the loss, the peer's by wrapping its ``hessian_vector_product``).
    """
    title = "top-k Hessian eigenvalues: ours vs PyHessian"
    peer, version = _import_peer()
    if peer is None:
        return _skipped("peer", title, version, sizes={"layers": list(sizes), "n_data": n_data, "k": k})
    # the package's __init__ rebinds the name ``pyhessian.hessian`` to the class: take the module itself
    peer_hessian_module = importlib.import_module("pyhessian.hessian")

    dev = runtime.get_device(device)
    model, x, y, loss_fn, theta = hessian_problem(sizes, n_data, dev, seed)
    d = theta.numel()
    if reference is None:
        reference = dense_top_eigenvalues(loss_fn, theta, k)[0]
    reference = torch.tensor([float(v) for v in reference][:k], dtype=torch.float64)
    (ours, _), ours_runs, hvps = _ours(loss_fn, theta, k, n_iter, repeats, seed)

    counter = [0]
    original = peer_hessian_module.hessian_vector_product

    def counted(*args, **kwargs):
        counter[0] += 1
        return original(*args, **kwargs)

    def run_peer():
        counter[0] = 0
        net = copy.deepcopy(model)
        torch.manual_seed(seed)  # PyHessian draws its start vectors from torch's global generator
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # backward(create_graph=True) reference-cycle warning
            h = peer_hessian_module.hessian(net, torch.nn.functional.mse_loss, data=(x, y), cuda=dev.type == "cuda")
            values, _ = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=k)
        for p in net.parameters():
            p.grad = None  # break the graph cycle PyHessian leaves in .grad
        return torch.tensor(values, dtype=torch.float64), counter[0]

    torch_state = torch.random.get_rng_state()
    peer_hessian_module.hessian_vector_product = counted
    try:
        (theirs, peer_hvps), ref_runs = _timed(run_peer, repeats, dev)
    finally:
        peer_hessian_module.hessian_vector_product = original
        torch.random.set_rng_state(torch_state)

    err_ours = _relative_error(ours, reference)
    err_peer = _relative_error(theirs, reference)
    err_pair = _relative_error(ours, theirs)
    return _result(
        "peer", title,
        sizes={"params": d, "layers": list(sizes), "n_data": n_data, "k": k, "dtype": "float64"},
        ours=_side(f"curvature.lanczos, {hvps} Hessian-vector products", ours_runs),
        reference=_side(f"{PEER} {version} power iteration (tol={tol:g}), {peer_hvps} products", ref_runs),
        check=_check("max relative eigenvalue error of either side vs the exact values", max(err_ours, err_peer),
                     EIGEN_RTOL, ours_vs_exact=err_ours, peer_vs_exact=err_peer, ours_vs_peer=err_pair),
        details={"peer": PEER, "peer_version": version, "peer_tol": tol, "peer_max_iter": max_iter,
                 "hvps_ours": hvps, "hvps_peer": peer_hvps, "eigenvalues_ours": ours.tolist(),
                 "eigenvalues_peer": theirs.tolist(), "eigenvalues_exact": reference.tolist()},
    )


# --------------------------------------------------------------------------- suite and command line


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """What the timings depend on: versions, device, CPU count, threads, load."""
    from . import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {
        "ntcourse": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "device": str(device), "device_name": name,
        "cpu_count": os.cpu_count(), "cpus_usable": usable, "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(), "load_average_before": _load(),
    }


def run_suite(quick: bool = False, device=None, only: Sequence[str] | None = None, seed: int = 0,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmarks named in ``only`` (default: all) and return the report (see the module docstring)."""
    dev = runtime.get_device(device)
    mode = "quick" if quick else "full"
    names = list(NAMES if not only else only)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {list(NAMES)}.")
    config = CONFIGS[mode]
    report: dict[str, Any] = {"schema": SCHEMA, "suite": "ntcourse.bench", "mode": mode, "seed": seed,
                              "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                              "environment": environment(dev), "benchmarks": []}
    start = time.perf_counter()
    dense_reference = None
    for name in NAMES:
        if name not in names:
            continue
        if log:
            log(f"==> {name} ({mode})")
        options = dict(config[name], device=dev, seed=seed)
        if name == "dynamics":
            result = bench_dynamics(**options)
        elif name == "ensemble":
            result = bench_ensemble(**options)
        elif name == "lanczos":
            result = bench_lanczos(**options)
            same = all(config["lanczos"][key] == config["peer"][key] for key in ("sizes", "n_data", "k"))
            if same:
                dense_reference = result["details"]["eigenvalues_dense"]
        else:
            result = bench_peer(**options, reference=dense_reference)
        report["benchmarks"].append(result)
    report["environment"]["load_average_after"] = _load()
    report["seconds"] = time.perf_counter() - start
    ran = [b for b in report["benchmarks"] if b["status"] == "ok"]
    report["all_checks_passed"] = all(b["check"]["passed"] for b in ran)
    report["targets_met"] = sum(bool(b["met"]) for b in ran)
    report["targets_total"] = len(ran)
    return report


def _fmt(value, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def format_table(report: dict[str, Any]) -> str:
    """The report as a plain-text table, one row per benchmark, followed by the sizes and checks."""
    head = ["benchmark", "ours (s)", "reference (s)", "ratio", "target", "met", "check"]
    rows = []
    for b in report["benchmarks"]:
        if b["status"] != "ok":
            rows.append([b["name"], "-", "-", "-", f">= {b['target']:g}x", "-", f"skipped ({b['reason'].split(' (')[0]})"])
            continue
        c = b["check"]
        rows.append([b["name"], _fmt(b["ours"]["seconds"], ".4g"), _fmt(b["reference"]["seconds"], ".4g"),
                     f"{b['ratio']:.1f}x", f">= {b['target']:g}x", "yes" if b["met"] else "no",
                     f"{'pass' if c['passed'] else 'FAIL'} ({c['value']:.2g} <= {c['tolerance']:g})"])
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: " | ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [line(head), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows]
    out.append("")
    for b in report["benchmarks"]:
        sizes = ", ".join(f"{k}={v}" for k, v in b["sizes"].items())
        out.append(f"{b['name']}: {sizes}")
        if b["status"] == "ok":
            out.append(f"    ours: {b['ours']['label']}; reference: {b['reference']['label']}")
            out.append(f"    check: {b['check']['name']}")
            if "hvps_ours" in b["details"]:
                other = b["details"].get("hvps_peer", b["details"].get("hvps_reference"))
                out.append(f"    Hessian-vector products: ours {b['details']['hvps_ours']}, reference {other}")
        else:
            out.append(f"    skipped: {b['reason']}")
    env = report["environment"]
    out.append("")
    out.append(f"{report['mode']} mode, {report['seconds']:.1f} s; device {env['device']} ({env['device_name']}); "
               f"torch {env['torch']}, {env['torch_threads']} thread(s), {env['cpus_usable']} of {env['cpu_count']} CPUs; "
               f"load average {env['load_average_before']} before, {env.get('load_average_after')} after")
    load, cpus = env.get("load_average_after") or env["load_average_before"], env["cpus_usable"] or 1
    if env["device"] == "cpu" and load and max(load[0], (env["load_average_before"] or [0])[0]) > 0.5 * cpus:
        out.append(f"note: the machine was busy (load average above half its {cpus} CPUs): ratios are noisy"
                   + ("; on a shared machine --threads 1 is steadier" if env["torch_threads"] > 1 else ""))
    out.append(f"targets met: {report['targets_met']} of {report['targets_total']} (speed is reported, not enforced); "
               f"correctness checks: {'all passed' if report['all_checks_passed'] else 'FAILED'}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ntcourse.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized runs (the whole suite in under a minute on 2 CPUs)")
    parser.add_argument("--json", metavar="PATH", help="write the full report as JSON to PATH")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 or mps (default: NTCOURSE_DEVICE, else CUDA, MPS, CPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's default)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(NAMES)}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    try:
        device = runtime.get_device(args.device)
        report = run_suite(quick=args.quick, device=device, only=only, seed=args.seed,
                           log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except ValueError as exc:
        parser.error(str(exc))
    print(format_table(report))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {path}")
    return 0 if report["all_checks_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
