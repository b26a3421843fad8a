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


def test_slq_matches_moments_exactly_and_trace_within_error(mlp_loss):
    loss_fn, theta, h = mlp_loss
    sd = curvature.spectral_density(loss_fn, theta, n_probes=8, n_iter=30, generator=torch.Generator().manual_seed(4))
    assert sd.nodes.shape == sd.weights.shape == (8, 30)
    torch.testing.assert_close(sd.weights.sum(1), torch.ones(8, dtype=F64))
    # Gauss quadrature with m nodes is exact for degree <= 2m-1: check q^T H^3 q / |q|^2 per probe.
    g = torch.Generator().manual_seed(4)
    probes = torch.randint(0, 2, (8, theta.numel()), generator=g).double() * 2 - 1
    exact3 = ((probes @ torch.linalg.matrix_power(h, 3)) * probes).sum(1) / theta.numel()
    torch.testing.assert_close((sd.weights * sd.nodes**3).sum(1), exact3, rtol=1e-8, atol=0)
    est = sd.trace()
    exact = torch.trace(h).item()
    assert abs(est.mean - exact) < 3 * est.sem
    # the extreme nodes converge to the extreme eigenvalues
    evals = torch.linalg.eigvalsh(h)
    torch.testing.assert_close(sd.nodes.max(1).values, evals[-1].expand(8), rtol=1e-6, atol=0)


def test_slq_density_integrates_to_one_and_finds_the_spectrum():
    lam = torch.tensor([1.0] * 50 + [4.0] * 30 + [9.0] * 20, dtype=F64)
    lam = lam + torch.linspace(0, 1e-3, 100, dtype=F64)     # distinct, clustered eigenvalues
    loss_fn = lambda th: 0.5 * (lam * th**2).sum()
    sd = curvature.spectral_density(loss_fn, torch.zeros(100, dtype=F64), n_probes=20, n_iter=20,
                                    generator=torch.Generator().manual_seed(0))
    grid = torch.linspace(-5, 15, 4001, dtype=F64)
    rho = sd.density(grid, width=0.1)
    torch.testing.assert_close(torch.trapezoid(rho, grid), torch.tensor(1.0, dtype=F64), rtol=1e-6, atol=0)
    # mass near each cluster equals its fraction of eigenvalues, within probe noise
    for centre, frac in [(1.0, 0.5), (4.0, 0.3), (9.0, 0.2)]:
        near = (grid - centre).abs() < 1.0
        assert abs(torch.trapezoid(rho[near], grid[near]).item() - frac) < 0.06
    assert abs(sd.trace().mean - lam.sum().item()) < 3 * sd.trace().sem + 1e-9


def test_slq_bad_inputs(mlp_loss):
    loss_fn, theta, _ = mlp_loss
    with pytest.raises(ValueError, match="n_iter=5000 exceeds the number of parameters D=1681"):
        curvature.spectral_density(loss_fn, theta, 2, n_iter=5000)
    with pytest.raises(ValueError, match="n_probes must be an integer >= 1"):
        curvature.spectral_density(loss_fn, theta, 0)
    sd = curvature.spectral_density(lambda th: 0.5 * (th**2).sum(), torch.zeros(4, dtype=F64), 2, n_iter=3)
    with pytest.raises(ValueError, match="width"):
        sd.density(torch.linspace(0, 1, 5), width=-1.0)
