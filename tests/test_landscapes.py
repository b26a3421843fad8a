import math

import pytest
import torch
from torch.func import grad, hessian

import ntcourse as nt


def random_psd(d, gen, rank=None):
    m = torch.randn(d, rank or d, generator=gen, dtype=torch.float64)
    return m @ m.T


def test_quadratic_loss_grad_hessian_match_autodiff(gen):
    a = random_psd(5, gen)
    c = torch.randn(5, generator=gen, dtype=torch.float64)
    q = nt.quadratic(a, c)
    theta = torch.randn(7, 5, generator=gen, dtype=torch.float64)  # 7 replicas
    # Loss by hand, replica by replica (a test may loop; the package may not).
    by_hand = torch.stack([0.5 * (t - c) @ a @ (t - c) for t in theta])
    torch.testing.assert_close(q.loss(theta), by_hand)
    torch.testing.assert_close(q.grad(theta), torch.vmap(grad(q.loss))(theta))
    torch.testing.assert_close(hessian(q.loss)(theta[0]), a)
    torch.testing.assert_close(q.hessian_at(theta[0]), a)


def test_quadratic_any_leading_axes(gen):
    q = nt.diagonal_quadratic([1.0, 2.0, 3.0])
    theta = torch.ones(4, 2, 3)
    assert q.loss(theta).shape == (4, 2)
    torch.testing.assert_close(q.loss(theta), torch.full((4, 2), 3.0))
    assert q.grad(theta).shape == (4, 2, 3)


def test_singular_psd_hessian_is_accepted(gen):
    a = random_psd(4, gen, rank=2)
    q = nt.quadratic(a)
    assert q.dim == 4
    assert q.max_stable_lr() == pytest.approx(2 / torch.linalg.eigvalsh(a).max().item())


def test_non_psd_hessian_rejected_with_its_eigenvalue():
    with pytest.raises(ValueError, match="hessian must be positive semi-definite; its smallest eigenvalue is -1"):
        nt.quadratic(torch.diag(torch.tensor([1.0, -1.0])))
    with pytest.raises(ValueError, match="curvatures must be >= 0"):
        nt.diagonal_quadratic([1.0, -0.5])


def test_non_symmetric_or_non_square_hessian_rejected():
    with pytest.raises(ValueError, match="hessian must be symmetric"):
        nt.quadratic(torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        nt.quadratic(torch.ones(2, 3))
    with pytest.raises(ValueError, match="hessian must have 2 dimension"):
        nt.quadratic(torch.ones(3))
    with pytest.raises(ValueError, match="inf or nan"):
        nt.quadratic(torch.tensor([[float("nan")]]))


def test_mismatched_shapes_name_the_argument():
    q = nt.diagonal_quadratic([1.0, 2.0])
    with pytest.raises(ValueError, match=r"theta has shape \(5, 3\).*dimension 2"):
        q.loss(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"center has shape \(3,\)"):
        nt.diagonal_quadratic([1.0, 2.0], center=[0.0, 0.0, 0.0])


@pytest.mark.parametrize("valley", [nt.parabolic_valley(3, a=2.0), nt.flat_path(2, barrier=4.0)], ids=["parabolic", "flat-path"])
def test_curved_valley_gradient_matches_autodiff(valley, gen):
    theta = torch.randn(6, valley.dim, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(valley.grad(theta), torch.vmap(grad(valley.loss))(theta))
    y = theta[:, 0]
    torch.testing.assert_close(valley.dg(y), torch.vmap(grad(lambda t: valley.g(t)))(y))
    torch.testing.assert_close(valley.log_det_transverse(y), valley.n * torch.log(valley.g(y)))


def test_curved_valley_loss_is_zero_on_the_floor():
    path = nt.flat_path(2, barrier=4.0)
    floor = torch.zeros(5, 3, dtype=torch.float64)
    floor[:, 0] = torch.linspace(0, 1, 5)
    assert torch.all(path.loss(floor) == 0)
    assert torch.all(path.grad(floor) == 0)
    torch.testing.assert_close(path.g(torch.tensor([0.5])), torch.tensor([5.0]))


def test_curved_valley_arguments_checked():
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        nt.parabolic_valley(0)
    with pytest.raises(ValueError, match="a must be >= 0"):
        nt.parabolic_valley(2, a=-1.0)
    with pytest.raises(ValueError, match="barrier must be >= 0"):
        nt.flat_path(2, barrier=-1.0)
    with pytest.raises(ValueError, match="g must be positive"):
        nt.curved_valley(2, lambda y: y, lambda y: torch.ones_like(y))
    with pytest.raises(TypeError, match="dg must be a function"):
        nt.curved_valley(2, lambda y: 1 + y * y, 3.0)
    with pytest.raises(ValueError, match=r"theta has shape \(4, 2\).*dimension 3"):
        nt.flat_path(2, barrier=1.0).grad(torch.zeros(4, 2))


RIVERS = {
    "exponential": nt.exponential_river([0.5, 2.0, 8.0], rate=0.7, slope=0.3),
    "flat-exponential": nt.exponential_river(1.0, rate=1.0),
    "custom": nt.river_valley(
        2,
        lambda y: torch.stack([1 + y * y, 2 + torch.sin(y)], -1),
        lambda y: torch.stack([2 * y, torch.cos(y)], -1),
        lambda y: torch.cos(y) - y,
        lambda y: -torch.sin(y) - 1,
    ),
}


@pytest.mark.parametrize("river", RIVERS.values(), ids=RIVERS.keys())
def test_river_valley_gradient_matches_autodiff(river, gen):
    theta = torch.randn(6, river.dim, generator=gen, dtype=torch.float64)  # 6 replicas
    torch.testing.assert_close(river.grad(theta), torch.vmap(grad(river.loss))(theta))
    y = theta[:, 0]
    da_auto = torch.vmap(torch.func.jacrev(river.a))(y)                   # (6, n): d a_k / dy
    torch.testing.assert_close(river.da(y), da_auto)
    torch.testing.assert_close(river.dc(y), torch.vmap(grad(river.c))(y))
    torch.testing.assert_close(river.log_det_transverse(y), torch.log(river.curvatures(y)).sum(-1))


@pytest.mark.parametrize("river", RIVERS.values(), ids=RIVERS.keys())
def test_river_valley_loss_splits_into_river_and_valley(river, gen):
    theta = torch.randn(4, 3, river.dim, generator=gen, dtype=torch.float64)  # any leading axes
    y, x = theta[..., 0], theta[..., 1:]
    by_hand = river.c(y) + 0.5 * (river.a(y) * x**2).sum(-1)
    torch.testing.assert_close(river.loss(theta), by_hand)
    torch.testing.assert_close(river.river_loss(theta) + river.valley_loss(theta), river.loss(theta))
    assert river.valley_energy(theta).shape == (4, 3, river.n)
    assert river.loss(theta).shape == (4, 3) and river.grad(theta).shape == theta.shape


def test_exponential_river_preset():
    river = nt.exponential_river([1.0, 4.0], rate=0.5, slope=0.2)
    assert river.n == 2 and river.dim == 3
    y = torch.tensor([0.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(river.curvatures(y), torch.tensor([[1.0, 4.0], [math.exp(-1), 4 * math.exp(-1)]],
                                                                dtype=torch.float64))
    torch.testing.assert_close(river.c(y), torch.tensor([0.0, -0.4], dtype=torch.float64))
    # d ell / dy = -slope - rate * (valley loss): the pull along the river
    theta = torch.tensor([[0.3, 1.0, -0.5]], dtype=torch.float64)
    expected = -0.2 - 0.5 * river.valley_loss(theta)
    torch.testing.assert_close(river.grad(theta)[:, 0], expected)
    flat = nt.exponential_river(2.0)
    assert flat.n == 1
    torch.testing.assert_close(flat.loss(torch.tensor([[5.0, 0.0]])), torch.tensor([0.0]))


def test_river_valley_arguments_checked():
    a1 = lambda y: torch.exp(-y)[..., None]
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        nt.river_valley(0, a1, a1)
    with pytest.raises(TypeError, match="da must be a function"):
        nt.river_valley(1, a1, 2.0)
    with pytest.raises(ValueError, match="give both c and dc"):
        nt.river_valley(1, a1, a1, c=lambda y: y)
    with pytest.raises(ValueError, match=r"a\(y\) must return a tensor of shape y.shape \+ \(n,\).*expected \(5, 2\), got \(5, 1\)"):
        nt.river_valley(2, a1, a1)
    with pytest.raises(ValueError, match=r"c\(y\) must return a tensor of shape y.shape"):
        nt.river_valley(1, a1, a1, c=lambda y: y[:, None], dc=lambda y: y)
    with pytest.raises(ValueError, match="a must be positive"):
        nt.river_valley(1, lambda y: y[..., None], lambda y: torch.ones_like(y)[..., None])
    with pytest.raises(ValueError, match="curvatures must be > 0"):
        nt.exponential_river([1.0, -1.0])
    with pytest.raises(ValueError, match="rate must be >= 0"):
        nt.exponential_river([1.0], rate=-1.0)
    with pytest.raises(ValueError, match="slope must be >= 0"):
        nt.exponential_river([1.0], slope=-0.1)
    with pytest.raises(ValueError, match=r"theta has shape \(4, 2\).*dimension 3"):
        nt.exponential_river([1.0, 2.0]).grad(torch.zeros(4, 2))
