import pytest
import torch

from ntcourse import cli, experiments


@pytest.fixture
def toy(monkeypatch):
    calls = []

    def compute(config, device, progress):
        calls.append((config, device.type, progress))
        g = torch.Generator().manual_seed(config["seed"])
        return {"x": torch.randn(config["n"], generator=g), "n": config["n"]}

    exp = experiments.Experiment("toy-experiment", "a toy", {"quick": {"n": 3}, "full": {"n": 5}}, compute, "tests")
    monkeypatch.setitem(experiments.REGISTRY, exp.name, exp)
    return exp, calls


def test_result_is_computed_once_then_loaded(toy, tmp_path, capsys):
    exp, calls = toy
    first = experiments.result(exp.name, "quick", seed=4, device="cpu", root=tmp_path)
    again = experiments.result(exp.name, "quick", seed=4, device="cpu", root=tmp_path)
    assert len(calls) == 1 and calls[0][0] == {"n": 3, "seed": 4}
    assert torch.equal(first["x"], again["x"]) and first["x"].shape == (3,)
    assert "seconds" in first
    out = capsys.readouterr().out
    assert "computed and stored 'toy-experiment'" in out and "loaded stored result" in out
    assert experiments.is_cached(exp.name, "quick", seed=4, root=tmp_path)
    assert not experiments.is_cached(exp.name, "full", seed=4, root=tmp_path)
    experiments.result(exp.name, "quick", seed=5, device="cpu", root=tmp_path)   # another seed is another entry
    assert len(calls) == 2


def test_cli_run_fills_the_cache_the_notebook_reads(toy, tmp_path, capsys):
    exp, calls = toy
    assert cli.main(["run", exp.name, "--scale", "full", "--device", "cpu", "--seed", "1", "--cache", str(tmp_path)]) == 0
    assert calls[-1][2] is True                      # progress bar on a headless run
    out = capsys.readouterr().out
    assert "running 'toy-experiment' at scale full on cpu" in out and "x (5,)" in out
    stored = experiments.result(exp.name, "full", seed=1, root=tmp_path)
    assert len(calls) == 1 and stored["x"].shape == (5,)
    assert cli.main(["run", exp.name, "--scale", "full", "--seed", "1", "--cache", str(tmp_path), "--recompute"]) == 0
    assert len(calls) == 2


def test_cli_errors_and_listing(toy, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("NTCOURSE_CACHE", str(tmp_path))
    assert cli.main(["run", "no-such-experiment"]) == 2
    assert "no experiment named 'no-such-experiment'" in capsys.readouterr().err
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "toy-experiment" in out and "digits-hessian-spectrum" in out and "not run" in out
    with pytest.raises(SystemExit):
        cli.main(["run", "toy-experiment", "--scale", "huge"])


def test_registration_rules():
    with pytest.raises(ValueError, match=r"no configuration for scale\(s\) \['full'\]"):
        experiments.Experiment("x", "x", {"quick": {}}, lambda c, d, p: {})
    exp = experiments.Experiment("x", "x", {"quick": {}, "full": {}}, lambda c, d, p: {})
    reg = {}
    experiments.register(exp, reg)
    with pytest.raises(ValueError, match="already registered"):
        experiments.register(experiments.Experiment("x", "y", {"quick": {}, "full": {}}, lambda c, d, p: {}), reg)
    with pytest.raises(KeyError, match="known: \\['x'\\]"):
        experiments.get("z", reg)


def test_course_experiments_have_matching_configurations():
    for exp in experiments.REGISTRY.values():
        assert set(exp.configs["quick"]) == set(exp.configs["full"]), exp.name


def test_digits_spectrum_compute_on_a_tiny_configuration():
    exp = experiments.get("digits-hessian-spectrum")
    config = {**exp.configs["quick"], "width": 4, "steps": 4, "lanczos_iter": 30, "slq_iter": 30, "seed": 0}
    out = exp.compute(config, torch.device("cpu"), False)
    assert out["n_params"].item() == 64 * 4 + 4 + 4 * 4 + 4 + 4 * 10 + 10
    assert out["top_eigenvalues"].shape == (5,) and out["slq_nodes"].shape == (4, 30)
    # SLQ's largest node converges to the top eigenvalue Lanczos finds
    torch.testing.assert_close(out["slq_nodes"].max(1).values, out["top_eigenvalues"][0].expand(4), rtol=1e-6, atol=0)
