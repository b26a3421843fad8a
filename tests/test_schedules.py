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
