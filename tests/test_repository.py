"""House rules of the repository: pins, metadata, notebooks stored cleared, one setup cell."""

import json
import os
import pathlib
import re
import tomllib

import yaml

import ntcourse as nt

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in ROOT.glob("chapters/**/*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_tests_run_at_quick_scale():
    # Sentinel: CI must never run the suite at full scale by accident.
    assert os.environ.get("NTCOURSE_SCALE", "quick") == "quick"
    assert nt.get_scale() == "quick"


def test_requirements_pin_everything_exactly_and_torch_without_local_tag():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [l for l in lines if l and not l.startswith("#")]
    assert reqs, "requirements.txt is empty"
    for line in reqs:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9_.\-]*", line), f"not an exact pin: {line}"
        assert "+" not in line, f"local version tag in {line} (write torch==2.13.0, never +cpu)"
    assert "torch==2.13.0" in reqs


def test_package_metadata_takes_lower_bounds_only():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(meta["dependencies"]) + [d for ds in meta.get("optional-dependencies", {}).values() for d in ds]
    for dep in deps:
        assert ">=" in dep and "==" not in dep and "<" not in dep.replace(">=", ""), f"{dep}: lower bound only"
    assert meta["version"] == nt.__version__


def test_repository_url_kept_in_one_place():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == nt.runtime.REPOSITORY_URL
    for nb in NOTEBOOKS:
        assert nt.runtime.REPOSITORY_URL in json.dumps(json.loads(nb.read_text())["cells"][:3]), nb


def test_every_chapter_pairs_theory_and_lab_and_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    chapters = sorted(p for p in (ROOT / "chapters").iterdir() if p.is_dir())
    assert chapters
    for ch in chapters:
        assert (ch / "theory.md").exists() and (ch / "lab.ipynb").exists(), ch
        # only_build_toc_files would silently skip a page left out of the toc
        for page in list(ch.glob("*.md")) + list(ch.glob("*.ipynb")):
            assert f"chapters/{ch.name}/{page.stem}" in toc, f"{page} is not in _toc.yml"


def test_notebooks_are_stored_with_outputs_cleared():
    assert NOTEBOOKS
    for nb in NOTEBOOKS:
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, f"{nb}: clear outputs"


def test_first_code_cell_is_the_same_setup_cell_everywhere():
    firsts = set()
    for nb in NOTEBOOKS:
        code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        firsts.add("".join(code[0]["source"]))
    assert len(firsts) == 1, "first code cells differ between notebooks"
    cell = firsts.pop()
    assert cell == (ROOT / "authoring" / "setup_cell.py").read_text().strip(), (
        "the setup cell must equal authoring/setup_cell.py (the one copy every notebook starts with)")
    assert 'if "google.colab" in sys.modules:' in cell
    # the pip specifier is quoted, so a '>=' or '@' never reaches the shell unquoted
    assert re.search(r'%pip install --quiet "ntcourse @ git\+https://[^"]+"', cell)
    assert "nt.setup()" in cell
