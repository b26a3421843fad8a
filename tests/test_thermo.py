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
