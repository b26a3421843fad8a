import pytest
import torch

from ntcourse import curvature

F64 = torch.float64


@pytest.fixture(scope="module")
def mlp_loss():
    """A tanh MLP with 1,681 parameters on fixed random data, as a function of its flat parameters."""
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 40), torch.nn.Tanh(), torch.nn.Linear(40, 20), torch.nn.Tanh(),
                                torch.nn.Linear(20, 1)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64) * 0.5)
    x = torch.randn(100, 20, generator=g, dtype=F64)
    y = torch.randn(100, 1, generator=g, dtype=F64)
    loss_fn, theta = curvature.flat_loss(model, torch.nn.functional.mse_loss, x, y)
    return loss_fn, theta, curvature.dense_hessian(loss_fn, theta)


def test_flat_loss_matches_the_module(mlp_loss):
    loss_fn, theta, _ = mlp_loss
    assert theta.numel() == 1681
    assert torch.isfinite(loss_fn(theta))


def test_hvp_equals_dense_hessian_product(mlp_loss):
    loss_fn, theta, h = mlp_loss
    v = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(1), dtype=F64)
    torch.testing.assert_close(curvature.hvp(loss_fn, theta, v), h @ v, rtol=1e-9, atol=1e-10)


def test_hvp_on_a_quadratic_is_exact():
    a = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    loss_fn = lambda th: 0.5 * th @ a @ th
    v = torch.tensor([1.0, -2.0], dtype=F64)
    torch.testing.assert_close(curvature.hvp(loss_fn, torch.zeros(2, dtype=F64), v), a @ v)


def test_hutchinson_within_three_standard_errors(mlp_loss):
    loss_fn, theta, h = mlp_loss
    est = curvature.hutchinson_trace(loss_fn, theta, 200, generator=torch.Generator().manual_seed(2))
    exact = torch.trace(h).item()
    assert abs(est.mean - exact) < 3 * est.sem
    assert est.sem < 0.2 * abs(exact)


def test_lanczos_top_eigenvalues_match_dense(mlp_loss):
    loss_fn, theta, h = mlp_loss
    exact = torch.linalg.eigvalsh(h).flip(0)[:5]
    evals, evecs = curvature.lanczos(loss_fn, theta, 5, n_iter=120, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(evals, exact, rtol=1e-4, atol=0)
    # eigenvectors: H u = lambda u
    for i in range(5):
        u = evecs[:, i]
        torch.testing.assert_close(h @ u, evals[i] * u, rtol=0, atol=1e-4 * exact[0].item())


def test_lanczos_stops_early_on_a_low_rank_hessian():
    a = torch.diag(torch.tensor([5.0, 3.0, 0.0, 0.0, 0.0], dtype=F64))
    evals, evecs = curvature.lanczos(lambda th: 0.5 * th @ a @ th, torch.zeros(5, dtype=F64), 2, n_iter=5,
                                     generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(evals, torch.tensor([5.0, 3.0], dtype=F64))


def test_bad_inputs(mlp_loss):
    loss_fn, theta, _ = mlp_loss
    with pytest.raises(ValueError, match="k=2000 exceeds the number of parameters D=1681"):
        curvature.lanczos(loss_fn, theta, 2000)
    with pytest.raises(ValueError, match="n_probes must be an integer >= 2"):
        curvature.hutchinson_trace(loss_fn, theta, -5)
    with pytest.raises(ValueError, match=r"v has shape \(3,\)"):
        curvature.hvp(loss_fn, theta, torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="theta must have 1 dimension"):
        curvature.hvp(loss_fn, theta[None], theta)
    with pytest.raises(ValueError, match="refused above max_dim=100"):
        curvature.dense_hessian(loss_fn, theta, max_dim=100)
    with pytest.raises(ValueError, match="theta contains inf or nan"):
        curvature.hvp(loss_fn, torch.full_like(theta, float("nan")), theta)
