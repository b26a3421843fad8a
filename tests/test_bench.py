"""The benchmark suite (ntcourse.bench) at toy sizes: correctness checks and the report's fields, never speed."""

import json
import sys

import pytest
import torch

from ntcourse import bench

RESULT_FIELDS = {"name", "title", "status", "sizes", "ours", "reference", "ratio", "target", "met", "check", "details"}
SIDE_FIELDS = {"label", "seconds", "runs"}
CHECK_FIELDS = {"name", "value", "tolerance", "passed"}
ENV_FIELDS = {"torch", "python", "platform", "device", "device_name", "cpu_count", "cpus_usable", "torch_threads",
              "torch_interop_threads", "load_average_before", "load_average_after"}
TOP_FIELDS = {"schema", "suite", "mode", "seed", "started", "seconds", "environment", "benchmarks",
              "all_checks_passed", "targets_met", "targets_total"}

TINY = {
    "dynamics": dict(replicas=6, steps=5, every=2, repeats=1, reference_repeats=1),
    "ensemble": dict(models=3, steps=3, width=4, n_data=8, repeats=1, reference_repeats=1),
    "lanczos": dict(sizes=(3, 6, 1), n_data=16, k=2, n_iter=None, chunk=8, repeats=1),
    "peer": dict(sizes=(3, 6, 1), n_data=16, k=2, n_iter=None, tol=1e-8, max_iter=500, repeats=1),
}


def assert_ok(result, name):
    assert RESULT_FIELDS <= set(result)
    assert result["name"] == name and result["status"] == "ok"
    assert SIDE_FIELDS <= set(result["ours"]) and SIDE_FIELDS <= set(result["reference"])
    assert result["ours"]["seconds"] > 0 and result["reference"]["seconds"] > 0
    assert result["ratio"] == pytest.approx(result["reference"]["seconds"] / result["ours"]["seconds"])
    assert result["target"] == bench.TARGETS[name]
    assert isinstance(result["met"], bool)  # whatever it is: speed is not tested
    assert CHECK_FIELDS <= set(result["check"])
    assert result["check"]["passed"] is True, result["check"]
    json.dumps(result)  # serialisable as it stands


def test_dynamics_batched_and_looped_trajectories_agree():
    result = bench.bench_dynamics(**TINY["dynamics"], device="cpu")
    assert_ok(result, "dynamics")
    assert result["sizes"]["replicas"] == 6 and result["sizes"]["dim"] == 2
    assert result["check"]["bitwise_identical"] is True


def test_ensemble_vmap_and_loop_train_the_same_models():
    result = bench.bench_ensemble(**TINY["ensemble"], device="cpu")
    assert_ok(result, "ensemble")
    assert result["sizes"]["models"] == 3
    assert result["check"]["value"] < 1e-5


def test_lanczos_matches_the_dense_eigenvalues():
    result = bench.bench_lanczos(**TINY["lanczos"], device="cpu")
    assert_ok(result, "lanczos")
    d = result["sizes"]["params"]
    assert d == 3 * 6 + 6 + 6 + 1
    assert result["details"]["hvps_reference"] == d
    assert 2 <= result["details"]["hvps_ours"] <= d
    assert len(result["details"]["eigenvalues_ours"]) == 2


def test_dense_top_eigenvalues_equal_torch_hessian():
    _, _, _, loss_fn, theta = bench.hessian_problem((3, 6, 1), 16)
    top, parts = bench.dense_top_eigenvalues(loss_fn, theta, 3, chunk=5)
    full = torch.linalg.eigvalsh(torch.func.hessian(loss_fn)(theta)).flip(0)[:3]
    torch.testing.assert_close(top, full, rtol=1e-10, atol=1e-12)
    assert set(parts) == {"build_s", "eigvalsh_s"}


def test_peer_reported_as_skipped_when_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyhessian", None)  # makes `import pyhessian` raise ImportError
    result = bench.bench_peer(**TINY["peer"], device="cpu")
    assert result["status"] == "skipped" and "peer not installed" in result["reason"]
    assert result["check"]["passed"] is None and result["met"] is None
    assert "skipped (peer not installed)" in bench.format_table(
        {"benchmarks": [result], "mode": "quick", "seconds": 0.0, "targets_met": 0, "targets_total": 0,
         "all_checks_passed": True, "environment": bench.environment(torch.device("cpu")) | {"load_average_after": None}})


def test_peer_agrees_when_installed():
    pytest.importorskip("pyhessian", reason="peer not installed here (scripts/bench installs it)")
    result = bench.bench_peer(**TINY["peer"], device="cpu")
    assert_ok(result, "peer")
    assert result["details"]["hvps_peer"] > 0 and result["details"]["hvps_ours"] > 0
    assert result["check"]["ours_vs_peer"] < bench.EIGEN_RTOL


@pytest.fixture
def tiny_configs(monkeypatch):
    monkeypatch.setitem(bench.CONFIGS, "quick", TINY)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # main(--threads) must not leak into other tests


def test_command_line_writes_the_documented_json(tiny_configs, tmp_path, capsys):
    path = tmp_path / "sub" / "bench.json"
    assert bench.main(["--quick", "--device", "cpu", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    header = [cell.strip() for cell in out.splitlines()[0].split("|")]
    assert header == ["benchmark", "ours (s)", "reference (s)", "ratio", "target", "met", "check"]
    report = json.loads(path.read_text())
    assert TOP_FIELDS <= set(report) and ENV_FIELDS <= set(report["environment"])
    assert report["mode"] == "quick" and report["all_checks_passed"] is True
    assert [b["name"] for b in report["benchmarks"]] == list(bench.NAMES)
    for b in report["benchmarks"]:
        if b["status"] == "ok":
            assert_ok(b, b["name"])
        else:
            assert b["name"] == "peer" and "peer not installed" in b["reason"]
    assert report["targets_total"] == sum(b["status"] == "ok" for b in report["benchmarks"])


def test_exit_status_is_nonzero_only_when_a_check_fails(tiny_configs, monkeypatch, capsys):
    monkeypatch.setattr(bench, "TARGETS", {name: 1e12 for name in bench.NAMES})  # every speed target missed
    assert bench.main(["--quick", "--device", "cpu", "--only", "dynamics", "--threads", "1"]) == 0
    monkeypatch.setattr(bench, "EIGEN_RTOL", -1.0)  # an eigenvalue check that cannot pass
    assert bench.main(["--quick", "--device", "cpu", "--only", "lanczos"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_unknown_benchmark_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--only", "nonsense"])
    assert exc.value.code == 2
    assert "unknown benchmark" in capsys.readouterr().err
