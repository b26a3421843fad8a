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




def _tiny_markov_config(**changes):
    exp = experiments.get("markov-transformer-warm")
    return {**exp.configs["quick"], "d_model": 8, "n_heads": 2, "context": 6, "batch_size": 4, "pre_steps": 20,
            "steps": 10, "eval_sequences": 16, "every": 5, "seed": 3, **changes}


def test_markov_transformer_warm_on_a_tiny_configuration(one_thread):
    from ntcourse import data

    exp = experiments.get("markov-transformer-warm")
    config = _tiny_markov_config()
    out = exp.compute(config, torch.device("cpu"), False)
    net = experiments.transformer_from_config(config)
    params = experiments.warm_params(out)
    assert set(params) == {k for k, _ in net.named_parameters()}
    assert out["n_params"].item() == sum(p.numel() for p in net.parameters())
    net.load_state_dict(params)                                   # the stored parameters are the network's
    chain = data.markov_chain(config["vocab"], config["alpha"], seed=config["seed"])
    assert torch.equal(out["transition"], chain.transition)       # the corpus is the seed's chain
    assert out["entropy_rate"].item() == pytest.approx(chain.entropy_rate)
    assert out["steps"].tolist() == [0, 5, 10, 15, 20, 25, 30]
    assert (out["excess"] >= 0).all() and out["excess"][-1] < out["excess"][0]      # it learned something
    assert out["final_excess"].item() == out["excess"][-1].item() and out["river_steps"].item() == 20
    assert out["river_excess"].item() == out["excess"][4].item()                     # recorded at step pre_steps
    again = exp.compute(config, torch.device("cpu"), False)                          # seeded by its configuration
    assert torch.equal(again["excess"], out["excess"])
    other = exp.compute({**config, "seed": 4}, torch.device("cpu"), False)
    assert not torch.equal(other["transition"], out["transition"])
    for kind in ("adamw", "sgd"):                                                     # the other phase-1 optimisers
        run = exp.compute({**config, "pre_optimizer": kind, "pre_lr": 0.3 if kind == "sgd" else 0.01,
                           "weight_decay": 0.01, "steps": 0}, torch.device("cpu"), False)
        assert torch.isfinite(run["excess"]).all() and run["river_excess"].item() == run["final_excess"].item()
    with pytest.raises(ValueError, match="pre_optimizer"):
        exp.compute({**config, "pre_optimizer": "lion"}, torch.device("cpu"), False)


def test_markov_transformer_warm_is_cached_by_configuration_and_listed(tmp_path, monkeypatch, capsys, one_thread):
    exp = experiments.get("markov-transformer-warm")
    tiny = experiments.Experiment("markov-transformer-warm-tiny", "tiny", {"quick": _tiny_markov_config(),
                                  "full": _tiny_markov_config(d_model=4)}, exp.compute, "tests")
    monkeypatch.setitem(experiments.REGISTRY, tiny.name, tiny)
    first = experiments.result(tiny.name, "quick", seed=1, device="cpu", root=tmp_path)
    again = experiments.result(tiny.name, "quick", seed=1, device="cpu", root=tmp_path)
    assert "loaded stored result" in capsys.readouterr().out
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert experiments.warm_params(again)["embed"].shape == (32, 8)
    assert not experiments.is_cached(tiny.name, "quick", seed=2, root=tmp_path)     # the seed is part of the key
    monkeypatch.setenv("NTCOURSE_CACHE", str(tmp_path))
    assert cli.main(["list"]) == 0
    assert "markov-transformer-warm " in capsys.readouterr().out
