import random

import numpy as np
import pytest
import torch

import ntcourse as nt
from ntcourse import runtime


def test_scale_default_is_quick(clean_env):
    assert nt.get_scale() == "quick"


def test_scale_from_env_and_argument(clean_env):
    clean_env.setenv("NTCOURSE_SCALE", "FULL")
    assert nt.get_scale() == "full"
    assert nt.get_scale("quick") == "quick"
    assert nt.by_scale(quick=1, full=2) == 2
    assert nt.by_scale(quick=1, full=2, scale="quick") == 1


@pytest.mark.parametrize("bad", ["fast", "", "medium"])
def test_unknown_scale_names_argument_and_choices(clean_env, bad):
    clean_env.setenv("NTCOURSE_SCALE", bad)
    with pytest.raises(ValueError, match=r"NTCOURSE_SCALE=.*'quick', 'full'"):
        nt.get_scale()
    with pytest.raises(ValueError, match=r"scale=.*one of"):
        nt.get_scale(bad or "x")


def test_seed_default_env_and_errors(clean_env):
    assert nt.get_seed() == 0
    clean_env.setenv("NTCOURSE_SEED", "7")
    assert nt.get_seed() == 7
    clean_env.setenv("NTCOURSE_SEED", "seven")
    with pytest.raises(ValueError, match="NTCOURSE_SEED='seven'"):
        nt.get_seed()
    with pytest.raises(ValueError, match="non-negative"):
        nt.get_seed(-1)


def test_seed_everything_makes_python_numpy_torch_repeatable(clean_env):
    def draw():
        return random.random(), np.random.rand(), torch.rand(()).item()

    nt.seed_everything(3)
    first = draw()
    nt.seed_everything(3)
    assert draw() == first
    nt.seed_everything(4)
    assert draw() != first
    assert torch.are_deterministic_algorithms_enabled()


def test_generator_is_seeded_and_independent_of_global_rng(clean_env):
    a = torch.randn(3, generator=nt.generator(5))
    torch.randn(10)  # the global RNG moves; the generator does not care
    b = torch.randn(3, generator=nt.generator(5))
    assert torch.equal(a, b)


def test_device_default_and_override(clean_env):
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert nt.get_device().type == expected
    clean_env.setenv("NTCOURSE_DEVICE", "cpu")
    assert nt.get_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_requesting_missing_accelerator_is_an_error_not_a_fallback(clean_env):
    clean_env.setenv("NTCOURSE_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        nt.get_device()


def test_unknown_device_name(clean_env):
    with pytest.raises(ValueError, match="device='gpu0'"):
        nt.get_device("gpu0")


def test_setup_prints_one_line_and_returns_runtime(clean_env, capsys):
    rt = nt.setup(seed=2, device="cpu")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0] == f"ntcourse: device=cpu, scale=quick, seed=2, torch {torch.__version__}"
    assert rt == runtime.Runtime(device=torch.device("cpu"), scale="quick", seed=2)
    import matplotlib as mpl

    assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][0] == nt.PALETTE["blue"]


def test_step_range_shows_a_bar_only_at_full_scale_by_default(clean_env):
    assert isinstance(runtime.step_range(5), range)
    clean_env.setenv("NTCOURSE_SCALE", "full")
    bar = runtime.step_range(5, desc="x")
    assert not isinstance(bar, range) and list(bar) == [0, 1, 2, 3, 4]
    assert isinstance(runtime.step_range(5, progress=False), range)
