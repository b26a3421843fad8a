"""Every notebook under chapters/ runs at seed 0, and its outputs go into the book's execution cache.

The book build (``execute_notebooks: cache``) executes each notebook through jupyter-cache and keeps
the outputs in ``_build/.jupyter_cache``, keyed by a hash of the code cells. This test performs that
same execution (jupyter-cache's ``single_nb_execution``, the function MyST-NB calls, with the timeout
and error policy of ``_config.yml``, in the notebook's folder) two notebooks at a time, fails with
the traceback if any cell raises (every lab's assertions included), and stores the executed notebook
in the cache exactly as MyST-NB would. The book build that follows in ``scripts/test`` then finds
every notebook cached and executes nothing, so each notebook runs once at seed 0, not twice. nbval
then re-runs every notebook for seeds 1-4 (``scripts/test``).

Run alone: ``python -m pytest tests -m notebooks -n 2``. Each run's wall time is written to
``_build/notebook-times.json`` (reported, not asserted: speed is a benchmark's business).
"""

import contextlib
import fcntl
import json
import os
import pathlib

import nbformat
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"          # Jupyter Book 1's execution cache for a book at ROOT
TIMES = BUILD / "notebook-times.json"
LOCK = BUILD / "notebooks.lock"

# The labs first (20-30 s each), the problem sets (about 5 s) last, so that two workers finish together.
NOTEBOOKS = sorted(p for p in ROOT.glob("chapters/*/*.ipynb") if p.stem.startswith("lab")) + sorted(
    p for p in ROOT.glob("chapters/*/*.ipynb") if not p.stem.startswith("lab"))


def _execution_config() -> dict:
    execute = yaml.safe_load((ROOT / "_config.yml").read_text()).get("execute", {})
    return {"timeout": execute.get("timeout", 30), "allow_errors": execute.get("allow_errors", False),
            "mode": execute.get("execute_notebooks", "auto")}


@contextlib.contextmanager
def _exclusive():
    """One writer at a time: the SQLite cache and the times file are shared by the xdist workers."""
    BUILD.mkdir(exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record_time(key: str, seconds: float) -> None:
    """Add one entry to _build/notebook-times.json (atomic replace, under the lock)."""
    with _exclusive():
        times = {}
        if TIMES.exists():
            with contextlib.suppress(ValueError):
                times = json.loads(TIMES.read_text())
        times[key] = round(seconds, 1)
        tmp = TIMES.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(times, indent=1, sort_keys=True))
        os.replace(tmp, TIMES)


def test_the_book_executes_through_the_cache_this_test_fills():
    config = _execution_config()
    assert config["mode"] == "cache", (
        f"_config.yml execute.execute_notebooks is {config['mode']!r}: tests/test_notebooks.py fills the "
        "jupyter-cache the book build reads only in 'cache' mode (change both together)")
    assert config["allow_errors"] is False, "_config.yml execute.allow_errors must stay false: a failing lab must fail the build"
    assert len(NOTEBOOKS) == len(set(NOTEBOOKS)) == len(list(ROOT.glob("chapters/*/*.ipynb")))


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT / "chapters").as_posix() for p in NOTEBOOKS])
def test_notebook_runs_at_seed_0_and_is_cached_for_the_book(path, monkeypatch):
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    monkeypatch.setenv("NTCOURSE_SEED", "0")
    monkeypatch.setenv("NTCOURSE_SCALE", "quick")
    config = _execution_config()
    nb = nbformat.read(path, as_version=4)          # as MyST-NB reads an .ipynb
    result = single_nb_execution(nb, cwd=str(path.parent), timeout=config["timeout"],
                                 allow_errors=config["allow_errors"], meta_override=True)
    rel = path.relative_to(ROOT).as_posix()
    record_time(f"{rel} seed=0", result.time)
    print(f"{rel} seed=0: {result.time:.1f} s")
    if result.err is not None:
        with _exclusive(), contextlib.suppress(KeyError):   # never let the book reuse an older, passing run
            cache = get_cache(str(CACHE))
            cache.remove_cache_record(cache.match_cache_notebook(nbformat.read(path, as_version=4)).pk)
        pytest.fail(f"{rel} (seed 0): {result.err.__class__.__name__}\n{result.exc_string}", pytrace=False)
    with _exclusive():
        cache = get_cache(str(CACHE))
        stage = cache.add_nb_to_project(str(path))
        cache.cache_notebook_bundle(CacheBundleIn(nb, stage.uri, data={"execution_seconds": result.time}),
                                    check_validity=False, overwrite=True)
        assert cache.match_cache_notebook(nbformat.read(path, as_version=4)) is not None, (
            f"{rel}: the cached copy does not match the notebook on disk (was it edited during the run?)")


def times_from_junit(report: pathlib.Path) -> dict[str, float]:
    """Per-notebook wall time (s) from an nbval run's JUnit report: the sum over a notebook's cells,
    kernel start included (it is timed in the first cell's setup)."""
    import xml.etree.ElementTree as ET

    totals: dict[str, float] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("classname", "")
        if name.endswith(".ipynb"):
            path = name[: -len(".ipynb")].replace(".", "/") + ".ipynb"
            totals[path] = totals.get(path, 0.0) + float(case.get("time", 0))
    return totals


if __name__ == "__main__":
    # scripts/test: python tests/test_notebooks.py SEED REPORT.xml adds nbval's times for that seed.
    import sys

    seed, report = sys.argv[1], pathlib.Path(sys.argv[2])
    for path, seconds in sorted(times_from_junit(report).items()):
        record_time(f"{path} seed={seed}", seconds)
    print(f"notebook times for seed {seed} -> {TIMES.relative_to(ROOT)}")
