import math

import pytest
import torch

import ntcourse as nt


def test_constant_and_number():
    assert nt.as_schedule(0.3)(100) == 0.3
    assert nt.Constant(0.3).values(4).tolist() == [0.3] * 4


def test_linear_and_cosine_endpoints():
    lin = nt.Linear(lr=1.0, n_steps=10, final=0.1)
    assert lin(0) == 1.0 and lin(10) == pytest.approx(0.1) and lin(5) == pytest.approx(0.55) and lin(20) == pytest.approx(0.1)
    cos = nt.Cosine(lr=1.0, n_steps=10)
    assert cos(0) == 1.0 and cos(10) == pytest.approx(0.0, abs=1e-12) and cos(5) == pytest.approx(0.5)


def test_warmup_stable_decay_phases():
    wsd = nt.WarmupStableDecay(lr=1.0, n_steps=100, warmup=10, decay_fraction=0.2)
    v = wsd.values(101)
    assert v[0].item() == pytest.approx(0.1) and v[9].item() == pytest.approx(1.0)
    assert torch.all(v[10:80] == 1.0)
    assert wsd.decay_start == 80
    assert v[90].item() == pytest.approx(0.5) and v[100].item() == pytest.approx(0.0)
    assert torch.all(v[80:].diff() <= 0)


def test_inverse_time():
    s = nt.InverseTime(lr=0.5, t0=10)
    assert s(0) == 0.5 and s(10) == pytest.approx(0.25)


def test_invalid_schedules():
    with pytest.raises(ValueError, match="lr must be >= 0"):
        nt.Linear(lr=-1.0, n_steps=10)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        nt.Cosine(lr=1.0, n_steps=0)
    with pytest.raises(ValueError, match="exceed n_steps"):
        nt.WarmupStableDecay(lr=1.0, n_steps=10, warmup=9, decay_fraction=0.5)
    with pytest.raises(ValueError, match="t0 must be > 0"):
        nt.InverseTime(lr=1.0, t0=0)
    with pytest.raises(TypeError, match="lr must be a number or an ntcourse schedule"):
        nt.as_schedule(lambda t: 0.1)
    with pytest.raises(TypeError, match="lr must be a real number"):
        nt.as_schedule("0.1")
    with pytest.raises(ValueError, match="lr must be finite"):
        nt.as_schedule(math.nan)


def test_exponential():
    s = nt.Exponential(lr=1.0, n_steps=10, final=0.01)
    v = s.values(12)
    assert v[0].item() == 1.0 and v[5].item() == pytest.approx(0.1) and v[10].item() == pytest.approx(0.01)
    assert v[11].item() == pytest.approx(0.01)                       # held after n_steps
    assert torch.allclose(v[1:11] / v[:10], torch.full((10,), s.factor, dtype=torch.float64))
    assert s.factor == pytest.approx(0.01 ** 0.1) and s.peak == 1.0
    assert nt.as_schedule(s) is s


def test_exponential_invalid():
    with pytest.raises(ValueError, match="final must be > 0"):
        nt.Exponential(lr=1.0, n_steps=10, final=0.0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        nt.Exponential(lr=0.0, n_steps=10)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        nt.Exponential(lr=1.0, n_steps=0)


def test_inverse_time_solves_the_variance_recursion():
    # eta_t = 1/(a (t + t0)) makes v_t = sigma^2 / (a^2 (t + t0 - 1)) an exact solution of
    # v_{t+1} = (1 - eta_t a)^2 v_t + eta_t^2 sigma^2 (Chapter 6's optimal annealing).
    a, sigma2, t0 = 2.0, 0.7, 5.0
    s = nt.InverseTime(lr=1.0 / (a * t0), t0=t0)
    v = sigma2 / (a**2 * (t0 - 1))
    for t, eta in enumerate(s.values(50).tolist()):
        assert eta == pytest.approx(1.0 / (a * (t + t0)))
        v = (1 - eta * a) ** 2 * v + eta**2 * sigma2
        assert v == pytest.approx(sigma2 / (a**2 * (t + 1 + t0 - 1)), rel=1e-12)
