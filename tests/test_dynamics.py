import math

import pytest
import torch

import ntcourse as nt

F64 = torch.float64


def test_noiseless_sgd_is_gradient_descent_exactly():
    a = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    theta0 = torch.tensor([[1.0, -1.0], [0.5, 2.0], [0.0, 0.0]], dtype=F64)  # 3 replicas
    traj = nt.sgd(nt.quadratic(a), theta0, 0.1, 25)
    m = torch.linalg.matrix_power(torch.eye(2, dtype=F64) - 0.1 * a, 25)
    torch.testing.assert_close(traj.theta, theta0 @ m.T)


def test_one_sgd_step_uses_the_noise_it_draws():
    q = nt.diagonal_quadratic(torch.tensor([1.0, 3.0], dtype=F64))
    theta0 = torch.ones(4, 2, dtype=F64)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    traj = nt.sgd(q, theta0, 0.2, 1, noise=nt.isotropic_noise(2.0, batch_size=4), generator=g1)
    xi = 1.0 * torch.randn((4, 2), generator=g2, dtype=F64)  # std = sigma / sqrt(B) = 1
    torch.testing.assert_close(traj.theta, theta0 - 0.2 * (q.grad(theta0) + xi))


def test_stationary_variance_matches_exact_discrete_formula():
    # 1-D valley, a = 4, lr = 0.1 (lr a = 0.4): Var = lr sigma^2 / (a (2 - lr a)).
    a, lr, sigma, r = 4.0, 0.1, 1.5, 20_000
    q = nt.diagonal_quadratic(torch.tensor([a], dtype=F64))
    traj = nt.sgd(q, torch.zeros(r, 1, dtype=F64), lr, 60, noise=nt.isotropic_noise(sigma),
                  generator=torch.Generator().manual_seed(0))
    var = traj.theta.var().item()
    predicted = lr * sigma**2 / (a * (2 - lr * a))
    # 20k independent samples: the relative standard error of a variance is sqrt(2/20k) = 1 %.
    assert var == pytest.approx(predicted, rel=0.05)


def test_covariance_noise_has_the_requested_covariance():
    c = torch.tensor([[2.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 0.5]], dtype=F64)
    noise = nt.covariance_noise(c, batch_size=2)
    x = noise.sample((200_000, 3), torch.Generator().manual_seed(1), F64, torch.device("cpu"))
    torch.testing.assert_close(torch.cov(x.T), c / 2, atol=0.02, rtol=0.0)
    torch.testing.assert_close(noise.cov_matrix(), c / 2)
    assert noise.trace() == pytest.approx(3.5 / 2)


def test_hessian_noise_is_scaled_hessian_and_accepts_singular():
    h = torch.diag(torch.tensor([1.0, 0.0, 4.0], dtype=F64))
    noise = nt.hessian_noise(h, scale=0.5, batch_size=4)
    torch.testing.assert_close(noise.cov_matrix(), h * 0.5 / 4)
    x = noise.sample((1000, 3), torch.Generator().manual_seed(1), F64, torch.device("cpu"))
    assert torch.all(x[:, 1] == 0)


def test_isotropic_noise_trace_needs_dimension():
    noise = nt.isotropic_noise(2.0)
    assert noise.trace(dim=3) == pytest.approx(12.0)
    with pytest.raises(ValueError, match="dim=D"):
        noise.cov_matrix()


def test_langevin_stationary_variance_exact_euler_maruyama():
    # x_{t+1} = (1 - h a) x + sqrt(2 T h) z  =>  Var = 2 T / (a (2 - h a)).
    a, h, temp, r = 2.0, 0.05, 0.3, 20_000
    q = nt.diagonal_quadratic(torch.tensor([a], dtype=F64))
    traj = nt.langevin(q, torch.zeros(r, 1, dtype=F64), h, 200, temperature=temp,
                       generator=torch.Generator().manual_seed(2))
    assert traj.theta.var().item() == pytest.approx(2 * temp / (a * (2 - h * a)), rel=0.05)


def test_signgd_moves_by_exactly_lr_per_coordinate():
    q = nt.diagonal_quadratic(torch.tensor([1.0, 1.0], dtype=F64))
    theta0 = torch.tensor([[1.0, -0.35]], dtype=F64)
    traj = nt.signgd(q, theta0, 0.1, 3)
    torch.testing.assert_close(traj.theta, torch.tensor([[0.7, -0.05]], dtype=F64))


def test_recording_every_k_from_burn_in_and_schedule_values():
    q = nt.diagonal_quadratic(torch.tensor([1.0], dtype=F64))
    sched = nt.Linear(lr=0.1, n_steps=10)
    traj = nt.sgd(q, torch.ones(5, 1, dtype=F64), sched, 10,
                  observables={"loss": lambda s: q.loss(s.theta), "g": lambda s: s.gradient},
                  every=3, record_from=2, record_theta=True)
    assert traj.steps.tolist() == [2, 5, 8]
    torch.testing.assert_close(traj.lrs, sched.values(10)[[2, 5, 8]])
    assert traj["loss"].shape == (3, 5)
    assert traj["g"].shape == (3, 5, 1)
    assert traj["theta"].shape == (3, 5, 1)
    torch.testing.assert_close(traj["loss"], 0.5 * traj["theta"][..., 0] ** 2)
    assert traj.time_average("loss").shape == (5,)
    with pytest.raises(KeyError, match="recorded"):
        traj["nope"]


def test_stochastic_gradient_function_gets_the_generator():
    seen = []

    def gradient(theta, generator):
        seen.append(generator)
        return torch.zeros_like(theta)

    g = torch.Generator().manual_seed(0)
    nt.sgd(gradient, torch.zeros(2, 2), 0.1, 3, generator=g)
    assert seen == [g, g, g]


def test_divergence_names_step_and_lr():
    q = nt.diagonal_quadratic(torch.tensor([1.0], dtype=F64))
    # x_{t+1} = -1.5 x_t: |x| first exceeds 1e12 after the update at step 68 (1.5**69 > 1e12).
    with pytest.raises(nt.DivergenceError, match=r"SGD diverged at step 68 \(lr=2\.5\)"):
        nt.sgd(q, torch.ones(3, 1, dtype=F64), 2.5, 1000)
    with pytest.raises(FloatingPointError, match="lr < 2/a"):
        nt.sgd(q, torch.ones(3, 1, dtype=F64), 2.5, 1000, check_every=7)


def test_divergence_inside_last_partial_check_window_is_caught():
    q = nt.diagonal_quadratic(torch.tensor([1.0], dtype=F64))
    with pytest.raises(nt.DivergenceError, match="at step 68"):
        nt.sgd(q, torch.ones(1, 1, dtype=F64), 2.5, 70, check_every=1000)


def test_nan_gradient_is_reported_as_divergence():
    def gradient(theta, generator):
        return torch.full_like(theta, float("nan"))

    with pytest.raises(nt.DivergenceError, match="at step 0"):
        nt.sgd(gradient, torch.ones(2, 2), 0.1, 5)


@pytest.mark.parametrize("runner", [nt.sgd, nt.signgd])
def test_negative_learning_rate_rejected(runner):
    q = nt.diagonal_quadratic([1.0])
    with pytest.raises(ValueError, match=r"lr \(the learning rate\) must be >= 0; got -0.1"):
        runner(q, torch.zeros(2, 1), -0.1, 10)


def test_bad_arguments_are_named():
    q = nt.diagonal_quadratic([1.0, 2.0])
    with pytest.raises(ValueError, match=r"theta0 must have 2 dimension"):
        nt.sgd(q, torch.zeros(2), 0.1, 10)
    with pytest.raises(ValueError, match=r"theta has shape \(4, 3\).*dimension 2"):
        nt.sgd(q, torch.zeros(4, 3), 0.1, 10)
    with pytest.raises(ValueError, match=r"theta has shape \(4, 2\).*noise covariance has dimension 3"):
        nt.sgd(q, torch.zeros(4, 2), 0.1, 10, noise=nt.covariance_noise(torch.eye(3)))
    with pytest.raises(TypeError, match="noise must be made by"):
        nt.sgd(q, torch.zeros(4, 2), 0.1, 10, noise=0.5)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 0"):
        nt.sgd(q, torch.zeros(4, 2), 0.1, -1)
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        nt.sgd(q, torch.zeros(4, 2), 0.1, 10, every=0)
    with pytest.raises(TypeError, match=r"observables\['x'\] must be a function"):
        nt.sgd(q, torch.zeros(4, 2), 0.1, 10, observables={"x": 3})
    with pytest.raises(TypeError, match="gradient must be a landscape"):
        nt.sgd(42, torch.zeros(4, 2), 0.1, 10)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        nt.langevin(q, torch.zeros(4, 2), 0.1, 10, temperature=-1.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        nt.isotropic_noise(-1.0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        nt.isotropic_noise(1.0, batch_size=0)
    with pytest.raises(ValueError, match="covariance must be positive semi-definite"):
        nt.covariance_noise(torch.diag(torch.tensor([1.0, -2.0])))


def test_replicas_are_independent_streams():
    q = nt.diagonal_quadratic(torch.tensor([1.0], dtype=F64))
    traj = nt.sgd(q, torch.zeros(1000, 1, dtype=F64), 0.1, 50, noise=nt.isotropic_noise(1.0),
                  generator=torch.Generator().manual_seed(0), record_theta=True, every=10)
    x = traj["theta"][-1, :, 0]
    assert x.unique().numel() == 1000
    # correlation between neighbouring replicas is zero within sampling error (1/sqrt(1000))
    assert abs(torch.corrcoef(torch.stack([x[:-1], x[1:]]))[0, 1].item()) < 4 / math.sqrt(1000)


def constant_push(value):
    """A gradient that is the same everywhere: SGD moves by -lr * value each step."""
    return lambda theta, generator: torch.full_like(theta, value)


def test_absorbing_set_records_exact_first_passage_and_freezes():
    theta0 = torch.tensor([[0.0], [0.5], [2.0]], dtype=F64)
    traj = nt.sgd(constant_push(-1.0), theta0, 0.125, 1000, absorb=lambda th: th[:, 0] >= 1.0, check_every=5)
    # 0 -> 1 takes 8 steps of 1/8; 0.5 -> 1 takes 4; a replica starting inside is absorbed after step 1.
    assert traj.first_passage.tolist() == [8, 4, 1]
    torch.testing.assert_close(traj.theta[:, 0], torch.tensor([1.0, 1.0, 2.125], dtype=F64))


def test_first_passage_is_none_without_absorb_and_minus_one_if_never():
    q = nt.diagonal_quadratic(torch.tensor([1.0], dtype=F64))
    assert nt.sgd(q, torch.zeros(2, 1, dtype=F64), 0.1, 3).first_passage is None
    traj = nt.sgd(q, torch.zeros(2, 1, dtype=F64), 0.1, 3, absorb=lambda th: th[:, 0] > 5)
    assert traj.first_passage.tolist() == [-1, -1]


def test_boundary_reflects_after_every_update():
    traj = nt.sgd(constant_push(1.0), torch.tensor([[0.25]], dtype=F64), 0.125, 3, boundary=torch.abs)
    # 0.25 -> 0.125 -> 0 -> |-0.125| = 0.125
    torch.testing.assert_close(traj.theta, torch.tensor([[0.125]], dtype=F64))
    with pytest.raises(TypeError, match="boundary must be a function"):
        nt.sgd(constant_push(1.0), torch.zeros(1, 1), 0.1, 3, boundary=1.0)


def test_brownian_mean_first_passage_time_is_one_over_two_t():
    # Free diffusion with temperature T, reflecting at 0, absorbing at 1: mean exit time 1/(2T).
    temp, h, r = 0.5, 1e-4, 2000
    traj = nt.langevin(constant_push(0.0), torch.zeros(r, 1, dtype=F64), h, 200_000, temperature=temp,
                       boundary=torch.abs, absorb=lambda th: th[:, 0] >= 1.0,
                       generator=torch.Generator().manual_seed(3))
    assert (traj.first_passage > 0).all()
    mean_time = traj.first_passage.double().mean().item() * h
    # standard error ~ 0.8/sqrt(2000) = 1.8 %; the discrete absorbing boundary adds ~ +1.2 %.
    assert mean_time == pytest.approx(1 / (2 * temp), rel=0.08)
