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

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from . import _validate as check
from . import cache
from .runtime import SCALES, generator, get_device, get_scale, get_seed, seed_everything
from .schedules import Cosine

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
                               generator=generator(config["seed"], device),
                               callbacks={"loss": lambda p: ce(torch.func.functional_call(net, p, (x,)), y)},
                               every=max(1, config["steps"] // 50), progress=progress)
    net.load_state_dict(params, strict=False)
    loss_fn, theta = curvature.flat_loss(net, ce, x, y)
    g = generator(config["seed"] + 1, device)
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


# --- Chapter 4, full mode: a BatchNorm ResNet, spawning, linear and Bezier paths ----------------------------

def _seed(config: dict, tag: int) -> int:
    """A seed for one random stream of the run (``tag`` names the stream), derived from the run's seed."""
    return 1_000_003 * config["seed"] + tag


def _augment(x: torch.Tensor, flip: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random-crop-with-padding and horizontal-flip augmentation, from given draws (so it can run inside vmap).

    ``x`` ``(B, C, H, W)``; ``flip`` ``(B,)`` bool; ``dx``, ``dy`` ``(B,)`` integer offsets in ``0..2 pad``: the
    image is zero-padded by ``pad`` pixels on each side and the ``H x W`` window at ``(dy, dx)`` is kept.
    """
    b, _, h, w = x.shape
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = dy[:, None] + torch.arange(h, device=x.device)             # (B, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)             # (B, W)
    out = padded[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)                                    # advanced indexing put channels last


def _augment_draws(shape: tuple[int, ...], generator: torch.Generator, device: torch.device, pad: int = 4):
    """Flips and offsets for :func:`_augment`, each of shape ``shape`` (e.g. ``(B,)`` or ``(steps, B)``)."""
    flip = torch.rand(shape, generator=generator, device=device) < 0.5
    dx = torch.randint(0, 2 * pad + 1, shape, generator=generator, device=device)
    dy = torch.randint(0, 2 * pad + 1, shape, generator=generator, device=device)
    return flip, dx, dy


class _Flat:
    """A model's parameters as one flat vector ``(D,)`` in ``named_parameters`` order, and back."""

    @staticmethod
    def get(model: torch.nn.Module) -> torch.Tensor:
        return torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()

    @staticmethod
    def set(model: torch.nn.Module, theta: torch.Tensor) -> None:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(theta.detach(), model.parameters())


def _recompute_batchnorm(net: torch.nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Reset every BatchNorm's running statistics and recompute them as exact averages over ``x`` (train mode).

    Leaves ``net`` in eval mode. (Cumulative average: ``momentum=None`` during the pass, restored after.)
    """
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        for chunk in x.split(batch_size):
            net(chunk)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    net.eval()


def _evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy of ``net`` in eval mode on ``(x, y)``."""
    net.eval()
    loss, correct = torch.zeros((), dtype=torch.float64, device=x.device), torch.zeros((), dtype=torch.long, device=x.device)
    with torch.no_grad():
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
            out = net(xb)
            loss += torch.nn.functional.cross_entropy(out, yb, reduction="sum").double()
            correct += (out.argmax(1) == yb).sum()
    return loss.item() / len(y), correct.item() / len(y)


def _image_data(config: dict) -> tuple:
    """``(train, test)`` datasets on the CPU: CIFAR-10 (downloaded once if missing) or the synthetic stand-in."""
    from . import data

    check.choice("config['data']", config["data"], ("cifar10", "synthetic"))
    if config["data"] == "cifar10":
        data.download_cifar10()                       # no-op when the files are there; full scale only
        return (data.cifar10(split="train", limit=config["n_train"]),
                data.cifar10(split="test", limit=config["n_test"]))
    return (data.synthetic_images(config["n_train"], "train", seed=config["seed"]),
            data.synthetic_images(config["n_test"], "test", seed=config["seed"]))


def _resnet_mode_connectivity(config: dict, device: torch.device, progress: bool) -> dict[str, torch.Tensor]:
    r"""Spawning and mode connectivity of a BatchNorm ResNet (Chapter 4, full mode).

    1. **Parent and children** (Frankle et al. 2020). A parent ResNet is trained with SGD (momentum,
       weight decay, warmup-stable-decay schedule, random-crop and flip augmentation) and copied, with
       its optimiser state, at each epoch of ``spawn_epochs``. Each copy spawns two children trained to
       the end of the same schedule (``epochs`` in all) with their own minibatch orders and
       augmentation draws. Two more networks are trained from two different initialisations
       ("independent"). Pairs ``p = 0 .. S-1`` are the children spawned at ``spawn_epochs[p]``; pair
       ``P - 1 = S`` is the independent one.
    2. **Paths.** For each pair, the linear path and a quadratic Bézier path whose control point is
       trained (:func:`ntcourse.paths.train_control_point`) on minibatches, with BatchNorm using batch
       statistics, until the largest loss on the path is at most ``bezier_stop_ratio`` times the
       endpoints' loss (on the fixed batch below) or ``bezier_steps`` steps have passed.
    3. **Along each path**, at ``n_points`` evenly spaced values of ``s``: loss and accuracy on the first
       ``n_eval`` training images and on the test set, in eval mode, **after recomputing BatchNorm's
       running statistics at that point** with a pass over ``bn_images`` training images. This matters:
       an interpolated network has activations of other scales than either endpoint, and evaluating it
       with running statistics interpolated from (or copied from) the endpoints reports a spurious
       barrier (Garipov et al. 2018, section A.3; Frankle et al. 2020 do the same). Also the loss and
       the Hessian trace on one fixed batch of ``hessian_batch`` training images with BatchNorm in
       train mode: there the batch statistics are recomputed from the batch itself, so the loss is a
       deterministic function of the parameters alone and its Hessian is well defined. The trace is
       Hutchinson's estimate with ``hessian_probes`` Rademacher probes, the *same* probes at every
       point (the noise of the estimate is then shared along the path, not added to its profile);
       the weight-decay term (``weight_decay * D`` in the trace) is not included.
    4. **Reference trajectory.** For the first independent network, the fixed-batch loss and trace at
       every epoch of its training, to compare path curvature with the endpoint's own curvature at
       matched loss.

    The data source is ``config["data"]``: ``"cifar10"`` (full scale; the binary files are downloaded
    once into ``NTCOURSE_DATA`` if missing) or ``"synthetic"`` (quick scale: class templates plus noise,
    CIFAR-shaped, no download).

    Returns (``P = len(spawn_epochs) + 1`` pairs, ``S_pts = n_points``, ``E = epochs``; losses in nats):
        ``s`` ``(S_pts,)``; ``spawn_epochs``, ``spawn_steps`` ``(P-1,)``; ``pair_spawn_epoch`` ``(P,)`` (``-1``
        for the independent pair); ``{linear,bezier}_{train,test}_{loss,acc}`` ``(P, S_pts)``;
        ``{linear,bezier}_batch_loss``, ``{linear,bezier}_trace``, ``{linear,bezier}_trace_sem`` ``(P, S_pts)``;
        ``{linear,bezier}_loss_barrier`` and ``_error_barrier`` ``(P,)`` (definition of the chapter, on the
        training loss and the test error); ``{linear,bezier}_trace_barrier`` ``(P,)`` (the same for the
        trace, divided by the mean trace at the ends); ``bezier_steps``, ``bezier_stopped`` ``(P,)``;
        ``bezier_distance`` ``(P,)`` (``|c - (a+b)/2|``, parameter units); ``endpoint_distance`` ``(P,)``;
        ``epoch_loss`` ``(P, 2, E)`` mean training minibatch loss per epoch of each endpoint's history
        (children inherit the parent's epochs before the spawn); ``trajectory_epoch`` ``(K,)``,
        ``trajectory_batch_loss``, ``trajectory_trace`` ``(K,)``; ``endpoints`` ``(P, 2, D)`` and
        ``control_points`` ``(P, D)`` float32; ``n_params``; ``steps_per_epoch``.
    """
    from . import curvature, models, paths
    from .dynamics import DivergenceError
    from .runtime import step_range
    from .schedules import WarmupStableDecay

    seed_everything(config["seed"])
    train_set, test_set = _image_data(config)
    x, y = train_set.x.to(device), train_set.y.to(device)
    x_test, y_test = test_set.x.to(device), test_set.y.to(device)
    n = x.shape[0]
    batch_size = config["batch_size"]
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} exceeds the {n} training images.")
    steps_per_epoch = n // batch_size
    total = config["epochs"] * steps_per_epoch
    spawn_steps = sorted({round(e * steps_per_epoch) for e in config["spawn_epochs"]})
    if len(spawn_steps) != len(config["spawn_epochs"]) or spawn_steps[-1] >= total or spawn_steps[0] < 0:
        raise ValueError(f"spawn_epochs={config['spawn_epochs']} must be distinct epochs in [0, epochs={config['epochs']}) "
                         f"(at {steps_per_epoch} steps per epoch).")
    schedule = WarmupStableDecay(config["lr"], total, warmup=round(config["warmup_epochs"] * steps_per_epoch),
                                 decay_fraction=config["decay_fraction"])
    ce = torch.nn.functional.cross_entropy
    eval_bs = config["eval_batch"]

    def build(init_seed: int) -> torch.nn.Module:
        torch.manual_seed(init_seed)
        return models.resnet(config["depth"], config["width"], 10, norm="batch").to(device)

    def optimizer(net):
        return torch.optim.SGD(net.parameters(), lr=config["lr"], momentum=config["momentum"],
                               weight_decay=config["weight_decay"])

    def train(net, opt, start: int, stop: int, gen: torch.Generator, desc: str, on_epoch=None) -> torch.Tensor:
        """SGD steps ``start .. stop-1`` of the schedule; returns the minibatch losses ``(stop - start,)``."""
        net.train()
        losses, perm, pos = [], None, n
        for t in step_range(stop - start, progress, desc):
            step = start + t
            if pos + batch_size > n:
                perm, pos = torch.randperm(n, generator=gen, device=device), 0
            idx = perm[pos:pos + batch_size]
            pos += batch_size
            xb = x[idx]
            if config["augment"]:
                xb = _augment(xb, *_augment_draws((batch_size,), gen, device))
            for group in opt.param_groups:
                group["lr"] = schedule(step)
            opt.zero_grad(set_to_none=True)
            loss = ce(net(xb), y[idx])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            if on_epoch is not None and (step + 1) % steps_per_epoch == 0:
                on_epoch((step + 1) // steps_per_epoch, net)
                net.train()
        out = torch.stack(losses) if losses else torch.zeros(0, device=device)
        if not torch.isfinite(out).all():
            bad = int((~torch.isfinite(out)).nonzero()[0]) + start
            raise DivergenceError(f"{desc}: training diverged at step {bad} (lr={schedule(bad):.4g}); lower lr.")
        return out

    # the fixed batch: loss and Hessian with BatchNorm on batch statistics (no running statistics at all)
    template = build(0)
    params_of = curvature.unflatten(template)
    stat_free = torch.func.replace_all_batch_norm_modules_(copy.deepcopy(template))
    fixed_x, fixed_y = x[: config["hessian_batch"]], y[: config["hessian_batch"]]

    def batch_loss(theta: torch.Tensor, xb=fixed_x, yb=fixed_y) -> torch.Tensor:
        return ce(torch.func.functional_call(stat_free, params_of(theta), (xb,)), yb)

    def trace(theta: torch.Tensor) -> tuple[float, float]:
        gen = generator(_seed(config, 7), device)        # the same probes at every point
        est = curvature.hutchinson_trace(batch_loss, theta, config["hessian_probes"], generator=gen,
                                         chunk=config["hessian_chunk"])
        return est.mean, est.sem

    # 1. parent, children, independent pair
    parent = build(_seed(config, 1))
    parent_opt = optimizer(parent)
    gen = generator(_seed(config, 2), device)
    snapshots, history, done = [], [], 0
    for k in spawn_steps:
        history.append(train(parent, parent_opt, done, k, gen, "parent"))
        done = k
        snapshots.append((copy.deepcopy(parent.state_dict()), copy.deepcopy(parent_opt.state_dict())))
    parent_history = torch.cat(history)
    del parent, parent_opt

    def per_epoch(losses: torch.Tensor) -> torch.Tensor:
        return losses[: total].reshape(config["epochs"], steps_per_epoch).double().mean(1)

    endpoints, epoch_loss = [], []
    for i, (k, (model_state, opt_state)) in enumerate(zip(spawn_steps, snapshots)):
        pair, curves = [], []
        for j in range(2):
            child = build(0)
            child.load_state_dict(model_state)
            opt = optimizer(child)
            opt.load_state_dict(opt_state)
            own = train(child, opt, k, total, generator(_seed(config, 100 + 2 * i + j), device),
                        f"child {j} of epoch {k / steps_per_epoch:g}")
            curves.append(per_epoch(torch.cat([parent_history[:k], own])))
            pair.append(_Flat.get(child))
        endpoints.append(torch.stack(pair))
        epoch_loss.append(torch.stack(curves))

    trajectory: list[tuple[int, float, float, float]] = []

    def record(epoch: int, net) -> None:
        if epoch % config["trajectory_every"] == 0 or epoch == config["epochs"]:
            theta = _Flat.get(net)
            with torch.no_grad():
                value = batch_loss(theta).item()
            trajectory.append((epoch, value, *trace(theta)))

    pair, curves = [], []
    for j in range(2):
        net = build(_seed(config, 3 + j))
        if j == 0:
            record(0, net)
        own = train(net, optimizer(net), 0, total, generator(_seed(config, 5 + j), device),
                    f"independent {j}", on_epoch=record if j == 0 else None)
        curves.append(per_epoch(own))
        pair.append(_Flat.get(net))
    endpoints.append(torch.stack(pair))
    epoch_loss.append(torch.stack(curves))
    endpoints_t = torch.stack(endpoints)                                   # (P, 2, D)

    # 2.-3. paths
    evaluator = build(0)
    bn_x = x[torch.randperm(n, generator=torch.Generator().manual_seed(_seed(config, 8)))[: config["bn_images"]].to(device)]
    s_grid = torch.linspace(0, 1, config["n_points"], device=device)
    s_grid[0], s_grid[-1] = 0.0, 1.0

    known: list[tuple[torch.Tensor, torch.Tensor]] = []     # the endpoints, shared by both paths of a pair

    def measure(theta: torch.Tensor) -> torch.Tensor:
        for point, values in known:
            if torch.equal(point, theta):
                return values
        _Flat.set(evaluator, theta)
        _recompute_batchnorm(evaluator, bn_x, eval_bs)
        train_loss, train_acc = _evaluate(evaluator, x[: config["n_eval"]], y[: config["n_eval"]], eval_bs)
        test_loss, test_acc = _evaluate(evaluator, x_test, y_test, eval_bs)
        with torch.no_grad():
            fixed = batch_loss(theta).item()
        tr, tr_sem = trace(theta)
        values = torch.tensor([train_loss, train_acc, test_loss, test_acc, fixed, tr, tr_sem], dtype=torch.float64)
        if any(torch.equal(theta, end) for end in endpoints_t[p_now]):
            known.append((theta.clone(), values))
        return values

    columns = ("train_loss", "train_acc", "test_loss", "test_acc", "batch_loss", "trace", "trace_sem")
    out: dict[str, list] = {f"{kind}_{c}": [] for kind in ("linear", "bezier") for c in columns}
    bezier_steps, bezier_stopped, controls = [], [], []
    n_bezier = config["bezier_steps"]
    for p in range(endpoints_t.shape[0]):
        a, b = endpoints_t[p, 0], endpoints_t[p, 1]
        p_now = p
        known.clear()
        gen = generator(_seed(config, 200 + p), device)
        idx = torch.randint(0, n, (max(n_bezier, 1), batch_size), generator=gen, device=device)
        draws = _augment_draws((max(n_bezier, 1), batch_size), gen, device)

        def step_loss(theta, t, idx=idx, draws=draws):
            xb = x[idx[t]]
            if config["augment"]:
                xb = _augment(xb, draws[0][t], draws[1][t], draws[2][t])
            return batch_loss(theta, xb, y[idx[t]])

        with torch.no_grad():
            ends = max(batch_loss(a).item(), batch_loss(b).item())
        fit = paths.train_control_point(
            batch_loss, a, b, n_steps=n_bezier, lr=config["bezier_lr"], n_samples=config["bezier_samples"],
            optimizer=config["bezier_optimizer"], generator=gen, step_loss=step_loss,
            stop_at=config["bezier_stop_ratio"] * ends, check_every=config["bezier_check_every"],
            n_check=config["bezier_check_points"], progress=progress)
        bezier_steps.append(fit.steps)
        bezier_stopped.append(fit.stopped)
        controls.append(fit.path.control[1])
        for kind, path in (("linear", paths.linear(a, b)), ("bezier", fit.path)):
            _, values = paths.along(path, measure, s=s_grid, progress=progress)
            for c, column in enumerate(columns):
                out[f"{kind}_{column}"].append(values[:, c])

    result: dict[str, torch.Tensor] = {k: torch.stack(v) for k, v in out.items()}
    s64 = s_grid.double().cpu()

    def barrier(values: torch.Tensor) -> torch.Tensor:
        """max_s [v(s) - (1 - s) v(0) - s v(1)] for each row of ``values`` ``(P, S_pts)``."""
        return (values - (1 - s64) * values[:, :1] - s64 * values[:, -1:]).max(1).values

    for kind in ("linear", "bezier"):
        result[f"{kind}_loss_barrier"] = barrier(result[f"{kind}_train_loss"])
        result[f"{kind}_error_barrier"] = barrier(1 - result[f"{kind}_test_acc"])
        tr = result[f"{kind}_trace"]
        result[f"{kind}_trace_barrier"] = barrier(tr) / (0.5 * (tr[:, 0] + tr[:, -1])).abs()
    control_t = torch.stack(controls)
    result.update({
        "s": s64,
        "spawn_steps": torch.tensor(spawn_steps),
        "spawn_epochs": torch.tensor([k / steps_per_epoch for k in spawn_steps], dtype=torch.float64),
        "pair_spawn_epoch": torch.tensor([k / steps_per_epoch for k in spawn_steps] + [-1.0], dtype=torch.float64),
        "bezier_steps": torch.tensor(bezier_steps),
        "bezier_stopped": torch.tensor(bezier_stopped),
        "bezier_distance": (control_t - endpoints_t.mean(1)).norm(dim=1).double().cpu(),
        "endpoint_distance": (endpoints_t[:, 0] - endpoints_t[:, 1]).norm(dim=1).double().cpu(),
        "epoch_loss": torch.stack(epoch_loss).cpu(),
        "trajectory_epoch": torch.tensor([r[0] for r in trajectory]),
        "trajectory_batch_loss": torch.tensor([r[1] for r in trajectory], dtype=torch.float64),
        "trajectory_trace": torch.tensor([r[2] for r in trajectory], dtype=torch.float64),
        "trajectory_trace_sem": torch.tensor([r[3] for r in trajectory], dtype=torch.float64),
        "endpoints": endpoints_t.float().cpu(),
        "control_points": control_t.float().cpu(),
        "n_params": torch.tensor(endpoints_t.shape[-1]),
        "steps_per_epoch": torch.tensor(steps_per_epoch),
    })
    return result


_RESNET_COMMON = {"momentum": 0.9, "weight_decay": 5e-4, "warmup_epochs": 1.0, "decay_fraction": 0.5,
                  "bezier_optimizer": "adam", "bezier_stop_ratio": 1.05}

register(Experiment(
    name="resnet-mode-connectivity",
    description="BatchNorm ResNet: spawned children and independent nets; loss, accuracy, Tr H on linear and Bezier paths",
    configs={
        # a CPU check of the pipeline on CIFAR-shaped synthetic data (about 10 s); not evidence about the claims
        "quick": {**_RESNET_COMMON, "data": "synthetic", "n_train": 128, "n_test": 64, "depth": 8, "width": 4,
                  "augment": True, "batch_size": 32, "lr": 0.4, "epochs": 3, "spawn_epochs": [1.0],
                  "warmup_epochs": 0.5, "n_points": 3, "n_eval": 128, "bn_images": 128, "eval_batch": 128,
                  "hessian_batch": 16, "hessian_probes": 2, "hessian_chunk": 2, "trajectory_every": 1,
                  "bezier_steps": 6, "bezier_lr": 1e-3, "bezier_samples": 2, "bezier_check_every": 3,
                  "bezier_check_points": 3},
        # the paper-scale run: ResNet-20 on CIFAR-10, one GPU (about 40-60 min on one H100/H200-class GPU)
        "full": {**_RESNET_COMMON, "data": "cifar10", "n_train": 50_000, "n_test": 10_000, "depth": 20, "width": 16,
                 "augment": True, "batch_size": 128, "lr": 0.1, "epochs": 40,
                 "spawn_epochs": [0.0, 0.5, 1.0, 2.0, 4.0, 8.0],
                 "n_points": 17, "n_eval": 10_000, "bn_images": 10_000, "eval_batch": 1000,
                 "hessian_batch": 512, "hessian_probes": 16, "hessian_chunk": 2, "trajectory_every": 1,
                 "bezier_steps": 2000, "bezier_lr": 1e-3, "bezier_samples": 4, "bezier_check_every": 100,
                 "bezier_check_points": 9},
    },
    compute=_resnet_mode_connectivity,
    chapter="Chapter 4, Mode connectivity (full mode)",
))


# --- Chapter 6: a small causal transformer brought to a warm state on a Markov-chain stream --------------------

def transformer_from_config(config: Mapping):
    """The :func:`ntcourse.models.causal_transformer` that a ``markov-transformer-warm`` configuration describes."""
    from . import models

    return models.causal_transformer(vocab=config["vocab"], d_model=config["d_model"], n_heads=config["n_heads"],
                                     n_layers=config["n_layers"], context=config["context"],
                                     layer_norm=config["layer_norm"])


def warm_params(stored: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network parameters in a stored ``markov-transformer-warm`` result (keys ``params.<name>``), by name."""
    return {k[len("params."):]: v for k, v in stored.items() if k.startswith("params.")}


def _markov_transformer_warm(config: dict, device: torch.device, progress: bool) -> dict[str, torch.Tensor]:
    r"""Train a causal transformer from scratch on a Markov-chain token stream to a *warm* state (Chapter 6).

    The corpus is :func:`ntcourse.data.markov_chain` ``(vocab, alpha, seed=config["seed"])``: its entropy
    rate is the exact loss floor, and a model's excess over it at a context is a KL divergence
    (:meth:`ntcourse.data.MarkovChain.excess`). Every step draws ``batch_size`` fresh sequences of
    ``context + 1`` tokens (inputs and next-token targets), so there is no training set to overfit.

    Two phases, one network:

    1. **River.** ``pre_steps`` steps of ``pre_optimizer`` (``"adam"``, ``"adamw"`` with
       ``weight_decay``, or ``"sgd"``) with a cosine decay from ``pre_lr`` to 0: the fast way down the
       slow directions of the landscape (the river), which constant-rate SGD travels slowly.
    2. **Warm hold.** ``steps`` steps of plain SGD at the constant rate ``lr`` (batch ``batch_size``): the
       fast (valley) directions equilibrate at the temperature of that rate. The returned state is what
       the lab's cooldowns start from.

    The excess loss (nats/token, averaged over ``eval_sequences`` fixed held-out sequences and all their
    positions, the context being the last token seen) is recorded every ``every`` steps.

    Returns: ``params.<name>`` (the warm parameters, float32, by parameter name; see :func:`warm_params`),
    ``steps`` ``(K,)`` and ``excess`` ``(K,)`` (the record, steps counted over both phases),
    ``river_steps`` (``pre_steps``), ``river_excess`` (the excess at the end of phase 1),
    ``final_excess``, ``transition`` ``(V, V)`` and ``entropy_rate`` (the corpus), ``n_params``.
    """
    from . import data
    from .dynamics import DivergenceError
    from .runtime import step_range

    seed_everything(config["seed"])
    check.choice("config['pre_optimizer']", config["pre_optimizer"], ("adam", "adamw", "sgd"))
    chain = data.markov_chain(config["vocab"], config["alpha"], seed=config["seed"])
    torch.manual_seed(_seed(config, 1))
    net = transformer_from_config(config).to(device)
    stream = torch.Generator().manual_seed(_seed(config, 2))            # the training stream (CPU draws)
    held = data.sample_sequences(chain, config["eval_sequences"], config["context"],
                                 torch.Generator().manual_seed(_seed(config, 3))).to(device)
    length, batch_size = config["context"] + 1, config["batch_size"]

    def excess() -> float:
        net.eval()
        with torch.no_grad():
            return chain.excess(net(held), held).mean().item()

    def step(opt) -> torch.Tensor:
        tokens = data.sample_sequences(chain, batch_size, length, stream).to(device)
        logits = net(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, chain.vocab), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    pre, hold, every = config["pre_steps"], config["steps"], config["every"]
    kind = config["pre_optimizer"]
    if kind == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=config["pre_lr"], weight_decay=config["weight_decay"])
    else:
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        opt = cls(net.parameters(), lr=config["pre_lr"], weight_decay=config["weight_decay"])
    river_rate = Cosine(config["pre_lr"], pre) if pre > 0 else None     # phase 1: cosine decay to 0
    steps, record = [], []
    net.train()
    for t in step_range(pre + hold, progress, "markov-transformer-warm"):
        if t % every == 0:
            steps.append(t)
            record.append(excess())
            net.train()
        if t == pre:                                                     # phase 2: plain SGD at a constant rate
            river_excess = record[-1] if steps[-1] == t else excess()
            net.train()
            opt = torch.optim.SGD(net.parameters(), lr=config["lr"])
        if t < pre:
            for group in opt.param_groups:
                group["lr"] = river_rate(t)
        loss = step(opt)
        if not torch.isfinite(loss):
            raise DivergenceError(f"markov-transformer-warm diverged at step {t} "
                                  f"({'phase 1' if t < pre else 'SGD hold, lr=' + str(config['lr'])}); lower the rate.")
    if hold == 0:
        river_excess = excess()
    steps.append(pre + hold)
    record.append(excess())
    return {**{f"params.{k}": v.detach().float().cpu() for k, v in net.named_parameters()},
            "steps": torch.tensor(steps), "excess": torch.tensor(record, dtype=torch.float64),
            "river_steps": torch.tensor(pre), "river_excess": torch.tensor(river_excess, dtype=torch.float64),
            "final_excess": torch.tensor(record[-1], dtype=torch.float64),
            "transition": chain.transition, "entropy_rate": torch.tensor(chain.entropy_rate, dtype=torch.float64),
            "n_params": torch.tensor(sum(p.numel() for p in net.parameters()))}


_MARKOV_COMMON = {"vocab": 32, "alpha": 1.0, "d_model": 32, "n_heads": 2, "n_layers": 1, "context": 16,
                  "layer_norm": False}

register(Experiment(
    name="markov-transformer-warm",
    description="causal transformer (15k parameters) trained on a Markov-chain stream to a warm state at constant SGD rate",
    configs={
        # a few CPU seconds: the Chapter 6 lab computes it on a cache miss
        "quick": {**_MARKOV_COMMON, "batch_size": 8, "pre_optimizer": "adam", "pre_lr": 0.02, "pre_steps": 500,
                  "weight_decay": 0.0, "lr": 0.5, "steps": 150, "eval_sequences": 256, "every": 50},
        # one GPU, a few minutes: the same network, a much longer river phase, a longer hold
        "full": {**_MARKOV_COMMON, "batch_size": 8, "pre_optimizer": "adamw", "pre_lr": 0.01, "pre_steps": 20_000,
                 "weight_decay": 0.01, "lr": 0.5, "steps": 5_000, "eval_sequences": 2048, "every": 250},
    },
    compute=_markov_transformer_warm,
    chapter="Chapter 6, Learning-rate schedules (transformer lab)",
))
