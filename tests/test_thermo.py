import pytest
import torch

import ntcourse as nt

F64 = torch.float64


def setup_2d():
    a = torch.tensor([[3.0, 1.0], [1.0, 1.0]], dtype=F64)
    c = torch.tensor([[1.0, -0.6], [-0.6, 0.5]], dtype=F64)
    return a, c


@pytest.mark.parametrize("lr", [0.01, 0.2, 0.5])
def test_discrete_lyapunov_solves_its_equation_and_matches_dense_solve(lr):
    a, c = setup_2d()
    s = nt.discrete_lyapunov(a, c, lr)
    m = torch.eye(2, dtype=F64) - lr * a
    torch.testing.assert_close(s, m @ s @ m.T + lr**2 * c)
    # reference: (I - M kron M) vec S = lr^2 vec C
    dense = torch.linalg.solve(torch.eye(4, dtype=F64) - torch.kron(m, m), lr**2 * c.reshape(-1)).reshape(2, 2)
    torch.testing.assert_close(s, dense)
    # exact trace identity: 1/2 Tr(A S) = lr/4 (Tr C + Tr(A S A))
    assert 0.5 * torch.trace(a @ s) == pytest.approx(lr / 4 * (torch.trace(c) + torch.trace(a @ s @ a)))


def test_continuous_lyapunov_is_small_step_limit():
    a, c = setup_2d()
    s = nt.continuous_lyapunov(a, c, 0.1)
    torch.testing.assert_close(a @ s + s @ a, 0.1 * c)
    ratio = nt.discrete_lyapunov(a, c, 1e-5) / nt.continuous_lyapunov(a, c, 1e-5)
    torch.testing.assert_close(ratio, torch.ones(2, 2, dtype=F64), rtol=1e-4, atol=0)


def test_lyapunov_rejects_unstable_or_mismatched():
    a, c = setup_2d()
    with pytest.raises(ValueError, match="no stationary state"):
        nt.discrete_lyapunov(a, c, 1.0)  # lr * lambda_max = 3.41 > 2
    with pytest.raises(ValueError, match="must match"):
        nt.discrete_lyapunov(a, torch.eye(3), 0.1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        nt.discrete_lyapunov(a, c, 0.0)
    with pytest.raises(ValueError, match="positive definite"):
        nt.continuous_lyapunov(torch.diag(torch.tensor([1.0, 0.0])), torch.eye(2), 0.1)


def test_replica_estimate():
    est = nt.replica_estimate(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert est.mean == pytest.approx(2.5)
    assert est.sem == pytest.approx(torch.tensor([1.0, 2.0, 3.0, 4.0]).std().item() / 2)
    assert f"{est:.2f}" == "2.50 ± 0.65"
    with pytest.raises(ValueError, match="at least 2 replicas"):
        nt.replica_estimate(torch.tensor([1.0]))


def test_fick_jacobs_flat_free_energy_gives_one_over_two_t():
    assert nt.thermo.fick_jacobs_mfpt(lambda y: torch.zeros_like(y), 0.25) == pytest.approx(2.0, rel=1e-8)


def test_fick_jacobs_entropic_barrier_ratio_matches_closed_form():
    import math

    temp, b = 0.01, 4.0
    entropic = lambda y: temp * torch.log(1 + b * torch.sin(math.pi * y) ** 2)   # (n T / 2) ln g with n = 2
    ratio = nt.thermo.fick_jacobs_mfpt(entropic, temp) * 2 * temp
    assert ratio == pytest.approx((1 + b / 2) / math.sqrt(1 + b), rel=1e-6)


def test_fick_jacobs_bad_inputs():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nt.thermo.fick_jacobs_mfpt(lambda y: y, 0.0)
    with pytest.raises(ValueError, match="finite values"):
        nt.thermo.fick_jacobs_mfpt(lambda y: y / 0.0, 1.0)


def test_ratio_estimate_exact_and_correlated():
    b = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64)
    est = nt.thermo.ratio_estimate(2 * b, b)
    assert est.mean == pytest.approx(2.0) and est.sem == pytest.approx(0.0, abs=1e-12)
    series = torch.stack([b, b + 1], 1)                 # (R, K) series are averaged over K
    assert nt.thermo.ratio_estimate(series, series).mean == pytest.approx(1.0)
    with pytest.raises(ValueError, match="must match"):
        nt.thermo.ratio_estimate(b, b[:3])
    with pytest.raises(ValueError, match="averages to zero"):
        nt.thermo.ratio_estimate(b, b - b.mean())


def test_equipartition_ratio_on_boltzmann_samples():
    g = torch.Generator().manual_seed(0)
    lam, temp = torch.tensor([0.5, 2.0, 10.0], dtype=F64), 0.3
    x = torch.randn(64, 200, 3, generator=g, dtype=F64) * (temp / lam).sqrt()
    for est in nt.thermo.equipartition_ratio(x, lam, temp):
        assert abs(est.mean - 1) < 4 * est.sem and est.sem < 0.05
    hot = nt.thermo.equipartition_ratio(x, lam, temp / 2)
    assert all(abs(e.mean - 2) < 4 * e.sem for e in hot)
    with pytest.raises(ValueError, match="curvature must be positive"):
        nt.thermo.equipartition_ratio(x, torch.tensor([1.0, 0.0, 1.0]), temp)
    with pytest.raises(ValueError, match=r"modes must have 3 dimension\(s\)"):
        nt.thermo.equipartition_ratio(x[0], lam, temp)


def test_fluctuation_dissipation_relations_hold_for_sgd_on_a_quadratic():
    # SGD with additive noise of covariance C on L = 1/2 x^T A x; FDR1 and FDR2 are exact here.
    g = torch.Generator().manual_seed(1)
    a = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    lr, r, burn, k = 0.3, 512, 200, 400
    theta = torch.zeros(r, 2, dtype=F64)
    rec = []
    for t in range(burn + k):
        full = theta @ a
        batch = full + torch.randn(r, 2, generator=g, dtype=F64) * torch.tensor([1.0, 0.3], dtype=F64)
        if t >= burn and t % 4 == 0:
            rec.append((theta, full, batch, batch @ a))
        theta = theta - lr * batch
    th, fg, bg, hg = (torch.stack(z, 1) for z in zip(*rec))
    sides = nt.thermo.fluctuation_dissipation(th, fg, bg, lr, hvp_batch_grad=hg)
    for name in ("fdr1", "fdr2"):
        est = nt.thermo.ratio_estimate(*sides[name])
        assert abs(est.mean - 1) < 5 * est.sem, (name, est)
        assert est.sem < 0.05
    with pytest.raises(ValueError, match="batch_grad has shape"):
        nt.thermo.fluctuation_dissipation(th, fg, bg[..., :1], lr)


def test_path_free_energy_and_occupation():
    s = torch.linspace(0, 1, 5, dtype=F64)
    lam = torch.stack([1 + s, 2 + s**2], 1)
    f = nt.thermo.path_free_energy(torch.zeros(5), lam, 0.2)
    torch.testing.assert_close(f, 0.1 * torch.log(lam).sum(1))
    torch.testing.assert_close(nt.thermo.path_free_energy(torch.zeros(5), torch.log(lam).sum(1), 0.2), f)
    with pytest.raises(ValueError, match="must be positive"):
        nt.thermo.path_free_energy(torch.zeros(5), lam - 2, 0.2)
    # samples from p(s) ∝ exp(-F/T) with F(s) = s on [0, 1], by inverting the CDF
    temp = 0.5
    u = torch.rand(200_000, generator=torch.Generator().manual_seed(2), dtype=F64)
    x = -temp * torch.log(1 - u * (1 - torch.exp(torch.tensor(-1 / temp, dtype=F64))))
    edges = torch.linspace(0, 1, 11, dtype=F64)
    f_meas, counts = nt.thermo.occupation_free_energy(x, edges, temp)
    centres = 0.5 * (edges[1:] + edges[:-1])
    # a bin of n counts has relative error 1/sqrt(n), so F has error T/sqrt(n)
    err = temp / counts.sqrt()
    assert ((f_meas - (centres - centres[0])).abs() < 5 * err + 1e-3).all()
    with pytest.raises(ValueError, match="strictly increasing"):
        nt.thermo.occupation_free_energy(x, edges.flip(0), temp)
