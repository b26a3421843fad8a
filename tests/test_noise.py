import pytest
import torch

from ntcourse import noise

F64 = torch.float64


@pytest.fixture
def regression():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=g, dtype=F64)
    y = torch.randn(50, generator=g, dtype=F64)
    theta = torch.randn(4, generator=g, dtype=F64)
    return theta, x, y


def sample_loss(theta, x, y):
    return 0.5 * (x @ theta - y) ** 2


def test_per_sample_grads_equal_a_python_loop(regression):
    theta, x, y = regression
    g = noise.per_sample_grads(sample_loss, theta, x, y)
    loop = []
    for xi, yi in zip(x, y):  # a test may loop; the package may not
        t = theta.clone().requires_grad_(True)
        sample_loss(t, xi, yi).backward()
        loop.append(t.grad)
    torch.testing.assert_close(g, torch.stack(loop))


def test_trace_and_eigenvalues_match_the_dense_covariance(regression):
    theta, x, y = regression
    g = noise.per_sample_grads(sample_loss, theta, x, y)
    dense = torch.cov(g.T, correction=0)
    assert noise.covariance_trace(g, batch_size=4) == pytest.approx(torch.trace(dense).item() / 4)
    torch.testing.assert_close(noise.covariance_top_eigenvalues(g, 3), torch.linalg.eigvalsh(dense).flip(0)[:3])
    assert noise.temperature(0.1, g, 4) == pytest.approx(0.1 * torch.trace(dense).item() / 4 / (2 * 4))


def test_isotropic_noise_gives_chapter_one_temperature():
    g = torch.randn(200_000, 3, generator=torch.Generator().manual_seed(1), dtype=F64) * 2.0  # sigma = 2
    assert noise.temperature(0.05, g, 8) == pytest.approx(0.05 * 4.0 / (2 * 8), rel=0.01)


def test_bad_inputs(regression):
    theta, x, y = regression
    with pytest.raises(ValueError, match="inputs has 50 samples but targets has 49"):
        noise.per_sample_grads(sample_loss, theta, x, y[:49])
    g = noise.per_sample_grads(sample_loss, theta, x, y)
    with pytest.raises(ValueError, match=r"k=5 exceeds min\(N, D\)=4"):
        noise.covariance_top_eigenvalues(g, 5)
    with pytest.raises(ValueError, match="at least 2 samples"):
        noise.covariance_trace(g[:1])
    with pytest.raises(ValueError, match="lr must be > 0"):
        noise.temperature(-0.1, g, 4)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        noise.covariance_trace(g, batch_size=0)
