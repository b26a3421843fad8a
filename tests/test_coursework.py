"""Student and instructor versions of the problems notebooks (ntcourse.coursework, `python -m ntcourse student`).

Unmarked tests are fast (no kernel). Tests marked ``coursework`` execute notebooks with nbclient
(scripts/test runs them in the notebook stage, two at a time): the student version stops at its
first stub with NotImplementedError, the instructor version runs to the end (every solution
passes its checks), and stubbing the last solution cell alone is caught by the check after it.
The test marked ``site`` reads the student build of the book (scripts/build-student-book).
"""

import ast
import html
import inspect
import os
import pathlib
import re

import nbformat
import pytest

from ntcourse import coursework
from ntcourse.cli import main
from ntcourse.coursework import CourseworkError
from ntcourse.runtime import REPOSITORY_URL

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROBLEMS = sorted(ROOT.glob("chapters/*/problems.ipynb"))
THEORY = sorted(ROOT.glob("chapters/*/theory.md"))
IDS = [p.parent.name for p in PROBLEMS]


def _code(source, tags=("hide-input", "solution")):
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), *cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


SQUARE = '''def square(x):
    """Return x squared."""
    # BEGIN SOLUTION
    y = x * x
    return y
    # END SOLUTION
'''


# --- the transformation, on notebooks built here --------------------------------------------------

def test_stub_replaces_block_with_docstring_task_at_its_indentation():
    out = coursework.stub_source(SQUARE)
    assert out == 'def square(x):\n    """Return x squared."""\n    raise NotImplementedError("Return x squared.")\n'
    namespace = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError, match="Return x squared"):
        namespace["square"](3)


def test_nested_indentation_and_several_blocks_in_one_cell():
    source = '''class Model:
    def forward(self, x):
        """Apply the layer.

        More text that is not the task.
        """
        if x is None:
            # BEGIN SOLUTION
            return 0
            # END SOLUTION
        # BEGIN SOLUTION
        return x + 1
        # END SOLUTION

def helper(a):
    # TASK: add one to a
    # BEGIN SOLUTION
    return a + 1
    # END SOLUTION
'''
    out = coursework.stub_source(source)
    lines = out.splitlines()
    assert '            raise NotImplementedError("Apply the layer.")' in lines
    assert '        raise NotImplementedError("Apply the layer.")' in lines
    assert '    raise NotImplementedError("add one to a")' in lines
    assert "BEGIN SOLUTION" not in out and "return x + 1" not in out
    ast.parse(out)
    blocks = coursework.solution_blocks(source)
    assert [b.indent for b in blocks] == [" " * 12, " " * 8, " " * 4]


def test_task_comment_inside_block_wins_and_quotes_are_escaped():
    source = '''def f(x):
    \'\'\'Docstring with "quotes" and a backslash \\\\.\'\'\'
    # BEGIN SOLUTION
    # TASK: compute "f" of x
    return x
    # END SOLUTION

def g(x):
    \'\'\'Docstring with "quotes" and a backslash \\\\.\'\'\'
    # BEGIN SOLUTION
    return x
    # END SOLUTION
'''
    out = coursework.stub_source(source)
    namespace = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError) as err:
        namespace["f"](1)
    assert str(err.value) == 'compute "f" of x'
    with pytest.raises(NotImplementedError) as err:
        namespace["g"](1)
    assert str(err.value) == 'Docstring with "quotes" and a backslash \\.'


def test_function_without_docstring_gets_its_name_as_task():
    out = coursework.stub_source("def area(r):\n    # BEGIN SOLUTION\n    return 3.14 * r * r\n    # END SOLUTION")
    assert out == 'def area(r):\n    raise NotImplementedError("implement area")'


@pytest.mark.parametrize("source, message", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "without a `# BEGIN SOLUTION`"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "inside the block"),
])
def test_unmatched_markers_are_clear_errors(source, message):
    nb = _notebook(_code(source))
    with pytest.raises(CourseworkError, match=message) as err:
        coursework.student_notebook(nb, name="chapters/x/problems.ipynb")
    assert "chapters/x/problems.ipynb, cell 1, line" in str(err.value)
    with pytest.raises(CourseworkError):
        coursework.instructor_notebook(nb)


def test_solution_cell_without_markers_and_markers_without_tags_are_errors():
    with pytest.raises(CourseworkError, match="cell 1: tagged `solution` but has no"):
        coursework.student_notebook(_notebook(_code("def f():\n    return 1\n")))
    with pytest.raises(CourseworkError, match="not tagged `solution`"):
        coursework.student_notebook(_notebook(_code(SQUARE, tags=())))
    with pytest.raises(CourseworkError, match="missing \\['hide-input'\\]"):
        coursework.student_notebook(_notebook(_code(SQUARE, tags=("solution",))))


def test_student_notebook_tags_outputs_badge_and_checks():
    check = _code("assert square(3) == 9", tags=("remove-output",))
    check.outputs = [nbformat.v4.new_output("stream", text="ok\n")]
    check.execution_count = 3
    nb = _notebook(_code(SQUARE), check, _code(SQUARE.replace("square", "cube"), tags=("solution", "hide-input", "x")))
    student = coursework.student_notebook(nb, colab_path="student/chapters/09-x/problems.ipynb")
    nbformat.validate(student)
    assert len(student.cells) == len(nb.cells) + 1
    badge = student.cells[0]
    slug = REPOSITORY_URL.removeprefix("https://github.com/")
    assert (f"https://colab.research.google.com/github/{slug}/blob/main/student/chapters/09-x/problems.ipynb"
            in badge.source)
    assert "tags" not in student.cells[2].metadata
    assert student.cells[4].metadata["tags"] == ["x"]
    assert student.cells[3].source == check.source and student.cells[3].metadata["tags"] == ["remove-output"]
    assert all(c.outputs == [] and c.execution_count is None for c in student.cells if c.cell_type == "code")
    assert "BEGIN SOLUTION" not in "".join(c.source for c in student.cells)
    assert len({c.id for c in student.cells}) == len(student.cells)
    assert nb.cells[1].source == SQUARE and check.outputs, "the original notebook is left unchanged"
    only = coursework.student_notebook(nb, only=[3])
    assert only.cells[1].source == SQUARE and "raise NotImplementedError" in only.cells[3].source
    with pytest.raises(CourseworkError, match="not solution cells"):
        coursework.student_notebook(nb, only=[2])


def test_instructor_notebook_keeps_solutions_and_adds_a_note():
    cell = _code(SQUARE)
    cell.outputs = [nbformat.v4.new_output("stream", text="x\n")]
    instructor = coursework.instructor_notebook(_notebook(cell), student_colab_path="student/a/problems.ipynb")
    nbformat.validate(instructor)
    assert "Instructor version" in instructor.cells[0].source
    assert "student/a/problems.ipynb" in instructor.cells[0].source
    assert instructor.cells[2].source == SQUARE and instructor.cells[2].outputs == []
    assert instructor.cells[2].metadata["tags"] == ["hide-input", "solution"]


def test_cli_writes_both_versions_and_reports_errors(tmp_path, capsys):
    chapter = tmp_path / "chapters" / "09-x"
    chapter.mkdir(parents=True)
    nbformat.write(_notebook(_code(SQUARE), _code("square(2)", tags=())), chapter / "problems.ipynb")
    assert main(["student", "--root", str(tmp_path), "--out", str(tmp_path / "s"),
                 "--instructor-out", str(tmp_path / "i")]) == 0
    student = nbformat.read(tmp_path / "s" / "chapters" / "09-x" / "problems.ipynb", as_version=4)
    instructor = nbformat.read(tmp_path / "i" / "chapters" / "09-x" / "problems.ipynb", as_version=4)
    assert "blob/main/student/chapters/09-x/problems.ipynb" in student.cells[0].source
    assert 'raise NotImplementedError("Return x squared.")' in student.cells[2].source
    assert instructor.cells[2].source == SQUARE
    nbformat.write(_notebook(_code("def f():\n    # BEGIN SOLUTION\n    pass\n")), chapter / "problems.ipynb")
    assert main(["student", "--root", str(tmp_path), "--out", str(tmp_path / "s2")]) == 2
    assert "chapters/09-x/problems.ipynb, cell 1, line 2: `# BEGIN SOLUTION` is never closed" in capsys.readouterr().err
    assert not (tmp_path / "s2").exists(), "nothing is written when a notebook is wrong"


# --- the real problems notebooks, without a kernel --------------------------------------------------

@pytest.mark.parametrize("path", PROBLEMS, ids=IDS)
def test_every_real_stub_raises_its_task(path):
    """Each stubbed function, defined alone and called, raises NotImplementedError with its docstring's task."""
    nb = nbformat.read(path, as_version=4)
    tasks = coursework.stub_tasks(nb, name=str(path))
    assert tasks, f"{path} has no solution cells"
    student = coursework.student_notebook(nb)
    for index, cell_tasks in tasks.items():
        source = student.cells[index].source
        assert "SOLUTION" not in source and "tags" not in student.cells[index].metadata
        namespace = {}
        exec(compile(source, f"{path.name} cell {index}", "exec"), namespace)
        functions = [v for v in namespace.values() if inspect.isfunction(v)]
        assert len(functions) == len(cell_tasks) == 1, "one function per solution cell"
        func = functions[0]
        required = [p for p in inspect.signature(func).parameters.values() if p.default is p.empty]
        with pytest.raises(NotImplementedError) as err:
            func(*[None] * len(required))
        assert str(err.value) == cell_tasks[0] == inspect.getdoc(func).splitlines()[0]


def _solution_first_lines(path):
    """The first code line of each solution block of a notebook (to look for in built pages)."""
    nb = nbformat.read(path, as_version=4)
    lines = []
    for index in coursework.solution_cells(nb):
        source = nb.cells[index].source.splitlines()
        for block in coursework.solution_blocks(nb.cells[index].source):
            body = [line.strip() for line in source[block.begin + 1:block.end] if line.strip()]
            lines.append(next(line for line in body if not line.startswith("#")))
    return lines


@pytest.mark.parametrize("path", THEORY, ids=[p.parent.name for p in THEORY])
def test_theory_solutions_are_removed_entirely(path):
    text = path.read_text()
    stripped = coursework.strip_theory_solutions(text, name=str(path))
    n_solutions = text.count("{solution-start}") + text.count("{solution}")
    assert n_solutions == text.count("{exercise-start}") + text.count("{exercise}")
    assert "{solution" not in stripped and ":class: dropdown" not in stripped
    assert stripped.count("{exercise-start}") == text.count("{exercise-start}")
    assert stripped.count("{exercise-end}") == text.count("{exercise-end}")
    # what remains is the page minus whole solution blocks: every fence still opens and closes
    assert len(re.findall(r"^(`{3,}|:{3,})", stripped, re.M)) % 2 == 0


def test_strip_theory_solutions_forms():
    page = ("Intro\n\n```{exercise-start}\n:label: ex-a\n```\nDo it.\n```{exercise-end}\n```\n\n"
            "```{solution-start} ex-a\n:class: dropdown\n```\nSecret *1*.\n\n$$x$$\n```{solution-end}\n```\n\n"
            "::::{solution} ex-b\n:class: dropdown\nSecret 2.\n```python\ncode\n```\n::::\n\nAfter.\n")
    out = coursework.strip_theory_solutions(page)
    assert "Secret" not in out and "code" not in out and "solution" not in out
    assert out.startswith("Intro\n\n```{exercise-start}") and out.endswith("After.\n")
    with pytest.raises(CourseworkError, match="never ended"):
        coursework.strip_theory_solutions("```{solution-start} ex-a\n```\ntext\n")


# --- executing the real notebooks (notebook stage of scripts/test) ---------------------------------

def _execute(nb, path, monkeypatch):
    """Run nb in a kernel; return (index of the first cell with an error, that error output) or (None, None)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("NTCOURSE_SEED", "0")
    monkeypatch.setenv("NTCOURSE_SCALE", "quick")
    monkeypatch.setenv("NTCOURSE_DEVICE", os.environ.get("NTCOURSE_DEVICE", "cpu"))
    try:
        NotebookClient(nb, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError:
        pass
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                return index, output
    return None, None


def _check_cell_after(nb, index):
    """The first code cell after ``index`` that is not a solution cell: where a stub in cell ``index`` is called."""
    return next(i for i in range(index + 1, len(nb.cells))
                if nb.cells[i].cell_type == "code" and "solution" not in nb.cells[i].metadata.get("tags", []))


@pytest.mark.coursework
@pytest.mark.parametrize("path", PROBLEMS, ids=IDS)
def test_student_version_stops_at_the_first_stub(path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    tasks = coursework.stub_tasks(nb)
    first = min(tasks)
    student = coursework.student_notebook(nb, colab_path=coursework.student_path(path.relative_to(ROOT).as_posix()))
    failed, error = _execute(student, path, monkeypatch)
    expected = _check_cell_after(nb, first) + 1             # + 1: the badge cell on top
    assert failed == expected, f"first error in cell {failed}, expected the check cell {expected}: {error}"
    assert error.ename == "NotImplementedError" and error.evalue == tasks[first][0]


@pytest.mark.coursework
@pytest.mark.parametrize("path", PROBLEMS, ids=IDS)
def test_instructor_version_runs_every_check(path, monkeypatch):
    nb = coursework.instructor_notebook(nbformat.read(path, as_version=4))
    failed, error = _execute(nb, path, monkeypatch)
    assert failed is None, f"cell {failed} failed: {error and (error.ename, error.evalue)}"
    assert "✓" in "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.coursework
@pytest.mark.parametrize("path", PROBLEMS, ids=IDS)
def test_last_stub_alone_is_caught_by_its_check(path, monkeypatch):
    """Stub only the last solution cell: everything before it passes, and its check raises NotImplementedError.

    (The first solution cell is covered by the student-version test; each cell's stub is checked without a
    kernel by test_every_real_stub_raises_its_task. Stubbing every cell alone would cost ~20 notebook runs.)
    """
    nb = nbformat.read(path, as_version=4)
    tasks = coursework.stub_tasks(nb)
    last = max(tasks)
    failed, error = _execute(coursework.student_notebook(nb, only=[last]), path, monkeypatch)
    assert failed == _check_cell_after(nb, last), f"first error in cell {failed}: {error}"
    assert error.ename == "NotImplementedError" and error.evalue == tasks[last][0]


# --- the student build of the book (scripts/build-student-book) -----------------------------------

STUDENT_HTML = ROOT / "_build" / "student-html"
HTML = ROOT / "_build" / "html"


def _text(page):
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


@pytest.mark.site
def test_student_book_has_no_solutions():
    for folder, script in ((HTML, "build-book"), (STUDENT_HTML, "build-student-book")):
        if not (folder / "index.html").exists():
            if os.environ.get("NTCOURSE_REQUIRE_SITE"):
                pytest.fail(f"{folder}/index.html is missing: run scripts/{script} before the site tests")
            pytest.skip(f"{folder.name} not built; run scripts/{script}")
    for path in PROBLEMS:
        page = pathlib.Path(path.relative_to(ROOT).with_suffix(".html"))
        normal, student = (HTML / page).read_text(), (STUDENT_HTML / page).read_text()
        marker = '<span class="c1"># BEGIN SOLUTION</span>'
        assert marker in normal and marker not in student, page
        assert "tag_solution" in normal and "tag_solution" not in student, page
        normal_text, student_text = _text(HTML / page), _text(STUDENT_HTML / page)
        for line in _solution_first_lines(path):
            assert line in normal_text, f"{page}: {line!r} missing from the normal build"
            assert line not in student_text, f"{page}: solution line {line!r} in the student build"
        assert student_text.count("raise NotImplementedError(") == sum(
            len(t) for t in coursework.stub_tasks(nbformat.read(path, as_version=4)).values())
    for path in THEORY:
        page = pathlib.Path(path.relative_to(ROOT).with_suffix(".html"))
        normal, student = (HTML / page).read_text(), (STUDENT_HTML / page).read_text()
        assert 'class="solution' in normal and 'class="solution' not in student, page
        assert student.count('class="exercise') == normal.count('class="exercise'), page
