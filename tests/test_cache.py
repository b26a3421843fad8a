import json

import pytest
import torch

from ntcourse import cache


@pytest.fixture
def root(tmp_path):
    return tmp_path / "cache"


def counter():
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(5.0), "loss": 0.25, "steps": 100}

    return compute, calls


def test_compute_once_then_load(root, capsys):
    compute, calls = counter()
    first = cache.cached("demo", {"lr": 0.1, "n": 3}, compute, root=root)
    second = cache.cached("demo", {"n": 3, "lr": 0.1}, compute, root=root)  # key order does not matter
    assert calls == [1]
    for r in (first, second):
        torch.testing.assert_close(r["x"], torch.arange(5.0))
        assert r["loss"].item() == 0.25 and r["steps"].item() == 100
    out = capsys.readouterr().out
    assert "computed and stored 'demo'" in out and "loaded stored result of 'demo'" in out


def test_key_depends_on_config_name_and_version(monkeypatch):
    k = cache.key("demo", {"lr": 0.1})
    assert k != cache.key("demo", {"lr": 0.2})
    assert k != cache.key("other", {"lr": 0.1})
    import ntcourse

    monkeypatch.setattr(ntcourse, "__version__", "999")
    assert k != cache.key("demo", {"lr": 0.1})


def test_recompute_forces_a_new_run(root):
    compute, calls = counter()
    cache.cached("demo", {}, compute, root=root, quiet=True)
    cache.cached("demo", {}, compute, root=root, quiet=True, recompute=True)
    assert calls == [1, 1]


def test_truncated_entry_is_detected_and_recomputed(root, capsys):
    compute, calls = counter()
    path = cache.save("demo", {"a": 1}, compute(), root=root)
    path.write_bytes(path.read_bytes()[:20])
    assert cache.load("demo", {"a": 1}, root=root) is None
    assert "checksum mismatch" in capsys.readouterr().out
    assert not path.exists()
    cache.cached("demo", {"a": 1}, compute, root=root, quiet=True)
    assert calls == [1, 1]


def test_missing_record_means_no_entry(root):
    compute, _ = counter()
    path = cache.save("demo", {}, compute(), root=root)
    path.with_suffix(".json").unlink()
    assert cache.load("demo", {}, root=root) is None


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_refused_even_with_a_valid_checksum(root, capsys):
    compute, _ = counter()
    path = cache.save("demo", {}, compute(), root=root)
    with open(path, "wb") as f:
        torch.save({"x": Evil()}, f)
    record = json.loads(path.with_suffix(".json").read_text())
    record["sha256"] = cache._sha256(path)  # an attacker can fix the checksum too
    path.with_suffix(".json").write_text(json.dumps(record))
    assert cache.load("demo", {}, root=root) is None
    out = capsys.readouterr().out
    assert "this must never run" not in out and "damaged entry" in out


def test_failed_compute_leaves_nothing_behind(root):
    def broken():
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        cache.cached("demo", {}, broken, root=root)
    assert not root.exists() or list(root.iterdir()) == []


def test_bad_inputs_are_explained(root):
    with pytest.raises(TypeError, match=r"config value config\['w'\] has type Tensor"):
        cache.key("demo", {"w": torch.ones(2)})
    with pytest.raises(ValueError, match="not finite"):
        cache.key("demo", {"lr": float("nan")})
    with pytest.raises(ValueError, match="path separators"):
        cache.key("a/b", {})
    with pytest.raises(TypeError, match=r"result\['x'\] has type str"):
        cache.save("demo", {}, {"x": "text"}, root=root)
    with pytest.raises(TypeError, match="non-empty dict"):
        cache.save("demo", {}, {}, root=root)
    with pytest.raises(TypeError, match="compute must be a function"):
        cache.cached("demo", {}, 3, root=root)


def test_dataclass_configs_and_env_folder(tmp_path, monkeypatch):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Config:
        lr: float
        widths: tuple

    assert cache.key("demo", Config(0.1, (8, 8))) == cache.key("demo", {"lr": 0.1, "widths": [8, 8]})
    monkeypatch.setenv("NTCOURSE_CACHE", str(tmp_path / "env"))
    assert cache.cache_dir() == tmp_path / "env"
