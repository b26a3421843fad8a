import math

import pytest
import torch

from ntcourse import curvature, paths
from ntcourse.dynamics import DivergenceError

F64 = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# Two minima at (-1, 0) and (1, 0) on a ring-shaped valley (r = 1): the segment between them crosses the
# bump at the origin (loss 1), a curve round the ring stays low. The tilt beta * y * (1 - x^2) keeps both
# ends minima (loss 0, Hessian positive definite as beta^2 < 4k) and breaks the up/down symmetry, so the
# default initialisation c = (a + b) / 2 = origin is not a saddle of the training objective.
K_Y, BETA = 0.05, 0.2
A2 = torch.tensor([-1.0, 0.0], dtype=F64)
B2 = torch.tensor([1.0, 0.0], dtype=F64)


def ring_loss(theta):
    x, y = theta[0], theta[1]
    return (x * x + y * y - 1) ** 2 + K_Y * y * y + BETA * y * (1 - x * x)


# --------------------------------------------------------------------------- the curves


@pytest.mark.parametrize("make", ["linear", "bezier"])
def test_endpoints_are_exact(make):
    a, b, c = _rand(7, seed=1) * 3.1, _rand(7, seed=2) * 0.7, _rand(7, seed=3)
    path = paths.linear(a, b) if make == "linear" else paths.bezier(a, c, b)
    s = torch.tensor([0.0, 0.3, 1.0], dtype=F64)
    pts = path.points(s)
    assert pts.shape == (3, 7)
    assert torch.equal(pts[0], a) and torch.equal(pts[2], b)
    assert torch.equal(path(0.0), a) and torch.equal(path(1.0), b)
    assert torch.equal(path.start, a) and torch.equal(path.end, b)
    # float32 too
    p32 = paths.linear(a.float(), b.float()) if make == "linear" else paths.bezier(a.float(), c.float(), b.float())
    assert torch.equal(p32(0.0), a.float()) and torch.equal(p32(1.0), b.float())


def test_bezier_midpoint_and_linear_formula():
    a, c, b = _rand(5, seed=1), _rand(5, seed=2), _rand(5, seed=3)
    torch.testing.assert_close(paths.bezier(a, c, b)(0.5), (a + 2 * c + b) / 4, rtol=0, atol=1e-15)
    s = torch.linspace(0, 1, 11, dtype=F64)
    torch.testing.assert_close(paths.linear(a, b).points(s), (1 - s[:, None]) * a + s[:, None] * b, rtol=0, atol=1e-15)
    # the midpoint control point gives the segment at constant speed
    torch.testing.assert_close(paths.bezier(a, (a + b) / 2, b).points(s), paths.linear(a, b).points(s))


@pytest.mark.parametrize("make", ["linear", "bezier"])
def test_tangent_equals_finite_difference(make):
    a, c, b = _rand(6, seed=4), _rand(6, seed=5), _rand(6, seed=6)
    path = paths.linear(a, b) if make == "linear" else paths.bezier(a, c, b)
    s = torch.tensor([0.1, 0.37, 0.5, 0.9], dtype=F64)
    h = 1e-6
    fd = (path.points(s + h) - path.points(s - h)) / (2 * h)
    torch.testing.assert_close(path.tangents(s), fd, rtol=0, atol=1e-8)
    # exact values at the ends: 2 (c - a) and 2 (b - c) for the quadratic
    if make == "bezier":
        torch.testing.assert_close(path.tangents(0.0), 2 * (c - a))
        torch.testing.assert_close(path.tangents(1.0), 2 * (b - c))


def test_arc_length():
    a, b = _rand(9, seed=7), _rand(9, seed=8)
    assert paths.linear(a, b).arc_length() == pytest.approx((b - a).norm().item(), rel=1e-13)
    # a control point on the segment only reparametrises it
    assert paths.bezier(a, 0.8 * a + 0.2 * b, b).arc_length() == pytest.approx((b - a).norm().item(), rel=1e-13)
    # the parabola y = 1 - x^2 from x = -1 to 1: length sqrt(5) + asinh(2) / 2
    arc = paths.bezier(A2, torch.tensor([0.0, 2.0], dtype=F64), B2).arc_length()
    assert arc == pytest.approx(math.sqrt(5) + math.asinh(2) / 2, rel=1e-12)


# --------------------------------------------------------------------------- projection


def test_project_onto_a_segment_batched():
    a, b = _rand(5, seed=9), _rand(5, seed=10)
    path = paths.linear(a, b)
    s0 = torch.linspace(0.0, 1.0, 13, dtype=F64)
    u = (b - a) / (b - a).norm()
    offsets = _rand(13, 5, seed=11)
    offsets = offsets - (offsets @ u)[:, None] * u                         # normal to the segment
    s, dist = paths.project(path, path.points(s0) + offsets)
    assert s.shape == dist.shape == (13,)
    torch.testing.assert_close(s, s0, rtol=0, atol=1e-9)
    torch.testing.assert_close(dist, offsets.norm(dim=1), rtol=1e-12, atol=1e-12)
    # beyond the ends: clamped to s = 0 and s = 1, distance to the endpoint
    s_out, d_out = paths.project(path, torch.stack([a - 0.5 * (b - a), b + 0.25 * (b - a)]))
    torch.testing.assert_close(s_out, torch.tensor([0.0, 1.0], dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(d_out, (b - a).norm() * torch.tensor([0.5, 0.25], dtype=F64))


def test_project_onto_a_curved_bezier_in_2d():
    path = paths.bezier(A2, torch.tensor([0.0, 2.0], dtype=F64), B2)         # the parabola y = 1 - x^2
    s0 = torch.linspace(0.02, 0.98, 25, dtype=F64) + 0.0013                 # off the scan grid
    t = path.tangents(s0)
    normal = torch.stack([-t[:, 1], t[:, 0]], 1) / t.norm(dim=1, keepdim=True)
    delta = 0.1 * torch.where(torch.arange(25) % 2 == 0, 1.0, -1.0).to(F64)   # both sides; radius of curvature >= 0.5
    s, dist = paths.project(path, path.points(s0) + delta[:, None] * normal)
    torch.testing.assert_close(s, s0, rtol=0, atol=1e-9)
    torch.testing.assert_close(dist, delta.abs(), rtol=0, atol=1e-12)
    # one point: scalars back
    s1, d1 = paths.project(path, path.points(0.3))
    assert s1.shape == () and s1.item() == pytest.approx(0.3, abs=1e-9) and d1.item() == pytest.approx(0, abs=1e-12)


# --------------------------------------------------------------------------- along


def test_along_stacks_values():
    path = paths.linear(A2, B2)
    s, values = paths.along(path, ring_loss, 5)
    torch.testing.assert_close(s, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=F64))
    torch.testing.assert_close(values, (s * 2 - 1) ** 4 - 2 * (s * 2 - 1) ** 2 + 1)   # (x^2 - 1)^2 on y = 0
    s, vecs = paths.along(path, lambda th: th * 2, s=torch.tensor([0.5, 1.0]))
    assert vecs.shape == (2, 2)
    # a curvature measurement: the trace of the Hessian (exact here, 2 x 2 and many probes is overkill)
    _, traces = paths.along(path, lambda th: torch.trace(curvature.dense_hessian(ring_loss, th)), 3)
    torch.testing.assert_close(traces[[0, 2]], torch.tensor([8.0 + 2 * K_Y, 8.0 + 2 * K_Y], dtype=F64))
    _, objs = paths.along(path, lambda th: {"x": th[0]}, 2)
    assert isinstance(objs, list) and len(objs) == 2


# --------------------------------------------------------------------------- training the control point


def test_training_finds_the_curved_valley():
    straight = paths.along(paths.linear(A2, B2), ring_loss, 65)[1].max().item()
    assert straight == pytest.approx(1.0)
    fit = paths.train_control_point(ring_loss, A2, B2, n_steps=200, lr=0.05, check_every=20,
                                    generator=torch.Generator().manual_seed(0))
    assert fit.steps == 200 and not fit.stopped
    assert fit.check_steps.tolist() == list(range(0, 201, 20))
    assert fit.max_loss[0].item() == pytest.approx(1.0)                    # initialised on the segment
    assert fit.max_loss[-1].item() < straight / 20
    assert fit.mean_loss[-1] < fit.max_loss[-1]
    assert torch.equal(fit.path.start, A2) and torch.equal(fit.path.end, B2)
    assert paths.along(fit.path, ring_loss, 65)[1].max().item() < 0.06
    assert fit.path.control[1].abs().max() > 1.5                            # bent well off the segment


def test_training_stops_at_the_endpoint_loss():
    fit = paths.train_control_point(ring_loss, A2, B2, n_steps=2_000, lr=0.05, check_every=10, stop_at=0.1,
                                    generator=torch.Generator().manual_seed(0))
    assert fit.stopped and fit.steps < 200 and fit.steps % 10 == 0
    assert fit.check_steps[-1].item() == fit.steps
    assert fit.max_loss[-1].item() <= 0.1 < fit.max_loss[-2].item()
    # already good enough: no step at all
    none = paths.train_control_point(ring_loss, A2, B2, c=fit.path.control[1], n_steps=100, stop_at=0.1)
    assert none.stopped and none.steps == 0 and torch.equal(none.path.control[1], fit.path.control[1])
    # SGD and reproducibility
    sgd = [paths.train_control_point(ring_loss, A2, B2, n_steps=30, lr=0.05, optimizer="sgd",
                                     generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(sgd[0].path.control, sgd[1].path.control)


def test_training_on_an_mlp_vmap_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    x, y = torch.randn(64, 4, generator=g, dtype=F64), torch.randint(0, 3, (64,), generator=g)
    loss_fn, theta = curvature.flat_loss(model, torch.nn.functional.cross_entropy, x, y)
    a, b = theta, theta + 0.5 * torch.randn(theta.shape, generator=g, dtype=F64)
    fits = [paths.train_control_point(loss_fn, a, b, n_steps=5, lr=1e-2, check_every=2, vectorize=v,
                                      n_samples=4, n_check=5,
                                      generator=torch.Generator().manual_seed(1)) for v in (True, False)]
    torch.testing.assert_close(fits[0].path.control, fits[1].path.control)
    torch.testing.assert_close(fits[0].max_loss, fits[1].max_loss)
    assert fits[0].check_steps.tolist() == [0, 2, 4, 5]
    # minibatch objective: step_loss(theta, step)
    batches = torch.arange(64).reshape(4, 16)

    def step_loss(th, t):
        idx = batches[t % 4]
        return curvature.flat_loss(model, torch.nn.functional.cross_entropy, x[idx], y[idx])[0](th)

    fit = paths.train_control_point(loss_fn, a, b, n_steps=4, lr=1e-2, step_loss=step_loss, n_samples=4, n_check=5)
    assert fit.steps == 4 and torch.isfinite(fit.path.control).all()


def test_divergence_names_step_and_lr():
    quartic = lambda th: (th**4).sum()
    a, b = torch.tensor([-1.0, 0.0], dtype=F64), torch.tensor([1.0, 0.0], dtype=F64)
    with pytest.raises(DivergenceError, match=r"step \d+ \(lr=1e\+06\)"):
        paths.train_control_point(quartic, a, b, c=torch.tensor([0.0, 3.0], dtype=F64), n_steps=50, lr=1e6,
                                  optimizer="sgd")


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_clear_errors():
    a, b = torch.zeros(3, dtype=F64), torch.ones(3, dtype=F64)
    path = paths.bezier(a, torch.full((3,), 0.5, dtype=F64), b)
    with pytest.raises(ValueError, match=r"a and b must have the same shape.*\(3,\).*\(4,\)"):
        paths.linear(a, torch.ones(4))
    with pytest.raises(ValueError, match=r"a must have 1 dimension"):
        paths.linear(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"b contains inf or nan"):
        paths.linear(a, torch.tensor([0.0, float("nan"), 1.0]))
    with pytest.raises(ValueError, match=r"c has shape \(2,\), but a has dimension 3"):
        paths.bezier(a, torch.zeros(2), b)
    with pytest.raises(ValueError, match=r"s must lie in \[0, 1\]; got values down to -0.1"):
        path.points(torch.tensor([-0.1, 0.5]))
    with pytest.raises(ValueError, match=r"s must lie in \[0, 1\].*up to 1.5"):
        paths.along(path, torch.sum, s=torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"s contains inf or nan"):
        path.tangents(float("nan"))
    with pytest.raises(ValueError, match=r"theta has shape \(5, 2\), but the path has dimension 3"):
        paths.project(path, torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"theta must have 1 or 2 dimension"):
        paths.project(path, torch.zeros(2, 2, 3))
    with pytest.raises(TypeError, match=r"path must be a Bezier"):
        paths.project((a, b), a)
    with pytest.raises(ValueError, match=r"n_steps must be an integer >= 0; got -1"):
        paths.train_control_point(ring_loss, A2, B2, n_steps=-1)
    with pytest.raises(ValueError, match=r"lr must be > 0; got 0.0"):
        paths.train_control_point(ring_loss, A2, B2, lr=0.0)
    with pytest.raises(ValueError, match=r"optimizer='lbfgs' is not accepted"):
        paths.train_control_point(ring_loss, A2, B2, optimizer="lbfgs")
    with pytest.raises(ValueError, match=r"stop_at must be finite"):
        paths.train_control_point(ring_loss, A2, B2, stop_at=float("nan"))
    with pytest.raises(ValueError, match=r"a contains inf or nan"):
        paths.train_control_point(ring_loss, torch.tensor([float("inf"), 0.0]), B2)
    with pytest.raises(TypeError, match=r"loss_fn must be a function"):
        paths.train_control_point(None, A2, B2)
    with pytest.raises(ValueError, match=r"n_points must be an integer >= 2; got 1"):
        paths.along(path, torch.sum, 1)
