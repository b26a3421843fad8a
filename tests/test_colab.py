"""The Colab path: the package installs from its own metadata into a fresh environment.

What Colab does with the first cell of every notebook is ``%pip install "ntcourse @ git+<repo>"``
into a Python that already has torch, numpy and matplotlib. This test does the same thing here,
as honestly as an offline CI allows:

1. ``python -m venv`` makes a fresh environment, *without* ``--system-site-packages``: nothing of
   the repository's ``.venv`` is visible in it.
2. ``pip install torch==<the pinned version>`` stands in for the torch that Colab preinstalls. This
   is the one package installed by hand, for two reasons: it is what Colab has, and without it pip
   would pick the newest torch that ``torch>=2.2`` admits, a multi-GB CUDA build, which Colab never
   downloads (its own torch satisfies the lower bound). On these machines pip takes the CPU wheel
   that lies on disk (about a minute for the whole test).
3. ``pip install <copy of the package>`` with only what a checkout gives pip: ``pyproject.toml``,
   ``README.md`` (the readme it declares) and ``ntcourse/``. No ``requirements.txt``, no
   constraints or ``--no-index`` from us: pip resolves every other dependency (numpy, matplotlib,
   ipywidgets, scipy, scikit-learn, tqdm, nbformat) from the package's metadata alone and fetches
   them from the package index, or its local cache. The time is printed.
4. In that environment, from a folder outside the repository (so the installed copy is imported,
   not the source tree), ``import ntcourse; ntcourse.setup()`` runs, and the install left torch
   alone, as it must on Colab.

The git URL itself cannot be fetched offline; that the setup cell names the repository URL kept
in ``_config.yml`` and ``ntcourse.runtime`` is checked in tests/test_repository.py, as is that
every ``chapters/**/*.ipynb`` opens with the same guarded install cell.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.colab


def _run(cmd, **kw):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_fresh_venv_installs_the_package_from_its_metadata_and_runs_setup(tmp_path):
    src = tmp_path / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "ntcourse", src / "ntcourse", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert not (src / "requirements.txt").exists()

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    # Colab's preinstalled torch (see the module docstring).
    torch_version = torch.__version__.split("+")[0]
    start = time.perf_counter()
    _run([py, "-m", "pip", "install", "--quiet", f"torch=={torch_version}"], env=env)
    t_torch = time.perf_counter() - start

    start = time.perf_counter()
    _run([py, "-m", "pip", "install", "--quiet", src], env=env, cwd=tmp_path)
    t_install = time.perf_counter() - start
    print(f"\nfresh venv: torch {torch_version} in {t_torch:.0f} s; `pip install <checkout>` in {t_install:.0f} s")

    out = _run([py, "-c",
                "import sys, torch, ntcourse as nt\n"
                "assert 'site-packages' in nt.__file__, nt.__file__\n"
                "rt = nt.setup()\n"
                "import matplotlib, numpy, ipywidgets\n"
                "print('ntcourse', nt.__version__, 'torch', torch.__version__, 'scale', nt.get_scale(), 'device', rt.device)"],
               env={**env, "NTCOURSE_SCALE": "quick", "NTCOURSE_DEVICE": "cpu", "MPLBACKEND": "Agg",
                    "NTCOURSE_CACHE": str(tmp_path / "cache")}, cwd=tmp_path)
    assert f"torch {torch_version}" in out, f"installing ntcourse replaced torch: {out}"
    assert "scale quick" in out, out

    freeze = _run([py, "-m", "pip", "freeze"], env=env)
    assert any(line.lower().startswith("ntcourse") for line in freeze.splitlines()), freeze
