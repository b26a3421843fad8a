"""Every lab's and problem set's assertions must hold for any seed: run each for seeds 1-4 (nbval runs seed 0).

Also records each run's wall time in _build/notebook-times.json (reported, not asserted:
speed is a benchmark's business, not a test's). The sweep runs under pytest-xdist (two
notebooks at a time, one torch thread each), so the file is updated under a lock.
"""

import fcntl
import json
import os
import pathlib
import time

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
LABS = sorted(ROOT.glob("chapters/*/lab*.ipynb")) + sorted(ROOT.glob("chapters/*/problems.ipynb"))
TIMES = ROOT / "_build" / "notebook-times.json"


@pytest.mark.seeds
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("path", LABS, ids=[f"{p.parent.name}-{p.stem}" for p in LABS])
def test_lab_assertions_hold_for_seed(path, seed, monkeypatch):
    monkeypatch.setenv("NTCOURSE_SEED", str(seed))
    monkeypatch.setenv("NTCOURSE_SCALE", "quick")
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    TIMES.parent.mkdir(exist_ok=True)
    with open(TIMES.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
        times[f"{path.relative_to(ROOT)} seed={seed}"] = round(elapsed, 1)
        tmp = TIMES.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(times, indent=1, sort_keys=True))
        os.replace(tmp, TIMES)
    print(f"{path.relative_to(ROOT)} seed={seed}: {elapsed:.1f} s")
