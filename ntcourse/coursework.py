"""Student and instructor versions of the problems notebooks, and solution-free theory pages.

The one exercise convention (``authoring/README.md``, "Writing exercises"): a solution cell is a
code cell tagged ``hide-input`` and ``solution`` that defines a function; the signature and the
docstring stay outside the solution, and the body is written between a ``# BEGIN SOLUTION`` line
and a ``# END SOLUTION`` line (a cell may hold several such blocks). The student version replaces
each block by ``raise NotImplementedError("<task>")`` at the block's indentation, where the task is
the text of a ``# TASK:`` comment (inside the block, or between the ``def`` and the block) or else
the first line of the enclosing function's docstring. The check cell that follows calls the
function with :mod:`ntcourse.checks`, so a student meets the ``NotImplementedError`` there first.

Everything here is a pure function over ``nbformat`` notebooks or markdown text; the command
``python -m ntcourse student`` (``ntcourse.cli``) does the file input and output.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

from .runtime import REPOSITORY_URL

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
TASK = "# TASK:"
SOLUTION_TAGS = ("solution", "hide-input")
"""Tags of a solution cell; the student version removes them so the stub is visible."""
STUDENT_DIR = "student"
"""Folder, at the repository root, where the student copies are published (the Colab badge's target)."""
INSTRUCTOR_NOTE = "instructor-note"
STUDENT_BADGE = "student-badge"
DEFAULT_TASK = "write your solution here"


class CourseworkError(ValueError):
    """A notebook that breaks the exercise convention (unmatched marker, solution cell without markers)."""


@dataclass(frozen=True)
class SolutionBlock:
    """One ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block of a cell (line numbers 0-based, inclusive)."""

    begin: int
    end: int
    indent: str
    task: str


def _where(name: str, cell: int | None, line: int | None = None) -> str:
    parts = [name or "notebook"]
    if cell is not None:
        parts.append(f"cell {cell}")
    if line is not None:
        parts.append(f"line {line + 1}")
    return ", ".join(parts)


def _marker(line: str) -> str | None:
    text = line.strip()
    return text if text in (BEGIN, END) else None


def solution_blocks(source: str, *, name: str = "", cell: int | None = None) -> list[SolutionBlock]:
    """The solution blocks of one code cell's source, in order; raises :class:`CourseworkError` on unmatched markers."""
    lines = source.splitlines()
    blocks, open_at = [], None
    for i, line in enumerate(lines):
        marker = _marker(line)
        if marker == BEGIN:
            if open_at is not None:
                raise CourseworkError(f"{_where(name, cell, i)}: `{BEGIN}` inside the block opened on line "
                                      f"{open_at + 1}; close it with `{END}` first")
            open_at = i
        elif marker == END:
            if open_at is None:
                raise CourseworkError(f"{_where(name, cell, i)}: `{END}` without a `{BEGIN}` before it")
            indent = lines[open_at][: len(lines[open_at]) - len(lines[open_at].lstrip())]
            blocks.append(SolutionBlock(open_at, i, indent, _task(lines, open_at, i)))
            open_at = None
    if open_at is not None:
        raise CourseworkError(f"{_where(name, cell, open_at)}: `{BEGIN}` is never closed by `{END}`")
    return blocks


def _task_comment(lines: list[str]) -> str | None:
    for line in lines:
        text = line.strip()
        if text.startswith(TASK):
            return text[len(TASK):].strip() or None
    return None


def _task(lines: list[str], begin: int, end: int) -> str:
    """The one-line task of the block on lines begin..end: a ``# TASK:`` comment, else the docstring's first line."""
    inside = _task_comment(lines[begin + 1:end])
    if inside:
        return inside
    func = _enclosing_function(lines, begin)
    if func is not None:
        above = _task_comment(lines[func.lineno - 1:begin])
        if above:
            return above
        doc = ast.get_docstring(func)
        if doc and doc.strip():
            return doc.strip().splitlines()[0].strip()
        return f"implement {func.name}"
    above = _task_comment(lines[:begin])
    return above or DEFAULT_TASK


def _enclosing_function(lines: list[str], begin: int):
    """The innermost function whose body holds line ``begin`` (0-based), or None (also if the cell does not parse)."""
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return None
    best = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno - 1 < begin <= node.end_lineno - 1:
            if best is None or node.lineno > best.lineno:
                best = node
    return best


def stub_source(source: str, *, name: str = "", cell: int | None = None) -> str:
    """The source with every solution block replaced by ``raise NotImplementedError("<task>")``."""
    lines = source.splitlines()
    blocks = solution_blocks(source, name=name, cell=cell)
    for block in reversed(blocks):
        lines[block.begin:block.end + 1] = [f"{block.indent}raise NotImplementedError({json.dumps(block.task, ensure_ascii=False)})"]
    return "\n".join(lines) + ("\n" if source.endswith("\n") else "")


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def solution_cells(nb, *, name: str = "") -> list[int]:
    """Indices of the solution cells, after checking the convention: every code cell tagged ``solution`` has
    at least one block, every cell with a block is tagged ``solution`` and ``hide-input``, markers match."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        blocks = solution_blocks(cell.source, name=name, cell=index)
        tagged = "solution" in _tags(cell)
        if tagged and not blocks:
            raise CourseworkError(f"{_where(name, index)}: tagged `solution` but has no `{BEGIN}` / `{END}` "
                                  "block: mark the lines a student writes")
        if blocks and not tagged:
            raise CourseworkError(f"{_where(name, index)}: has a `{BEGIN}` block but is not tagged `solution` "
                                  "(and `hide-input`)")
        if blocks:
            missing = [t for t in SOLUTION_TAGS if t not in _tags(cell)]
            if missing:
                raise CourseworkError(f"{_where(name, index)}: a solution cell needs the tags {list(SOLUTION_TAGS)}; "
                                      f"missing {missing}")
            found.append(index)
    return found


def stub_tasks(nb, *, name: str = "") -> dict[int, list[str]]:
    """Cell index -> the tasks its stubs will raise, for every solution cell."""
    return {i: [b.task for b in solution_blocks(nb.cells[i].source, name=name, cell=i)]
            for i in solution_cells(nb, name=name)}


def _clear_outputs(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)


def _repo_slug() -> str:
    return REPOSITORY_URL.rstrip("/").removeprefix("https://github.com/").removesuffix(".git")


def colab_url(path: str | PurePosixPath) -> str:
    """The Colab address of a notebook at ``path`` (relative to the repository root) on the main branch."""
    return f"https://colab.research.google.com/github/{_repo_slug()}/blob/main/{PurePosixPath(path).as_posix()}"


def student_path(path: str | PurePosixPath) -> PurePosixPath:
    """Where the student copy of the notebook at ``path`` (relative to the repository root) is published."""
    return PurePosixPath(STUDENT_DIR) / PurePosixPath(path)


def _badge_cell(path: str | PurePosixPath):
    url = colab_url(path)
    cell = nbformat.v4.new_markdown_cell(
        f"[Open this student notebook in Colab]({url})\n\n"     # a text link: the badge image is an external resource
        "**Student version.** Each exercise function raises `NotImplementedError` until you replace that line "
        "with your code; the cell after it checks your answer.")
    cell.metadata["tags"] = [STUDENT_BADGE]
    return cell


def _new_id(nb, cell) -> None:
    # nbformat 4.5 notebooks need unique cell ids; derive one that cannot collide with the originals'.
    if "id" in cell:
        taken = {c.get("id") for c in nb.cells}
        base = cell["metadata"]["tags"][0]
        cell["id"], n = base, 1
        while cell["id"] in taken:
            cell["id"], n = f"{base}-{n}", n + 1


def student_notebook(nb, *, colab_path: str | PurePosixPath | None = None, only: list[int] | None = None,
                     name: str = ""):
    """A student copy: solution blocks stubbed, their tags removed, outputs cleared, a Colab badge on top.

    ``colab_path`` (relative to the repository root) is the student copy's published path, the badge's
    target; None adds no badge. ``only`` stubs just those cell indices (for testing one stub at a time).
    """
    out = copy.deepcopy(nb)
    cells = solution_cells(out, name=name)
    if only is not None:
        wrong = sorted(set(only) - set(cells))
        if wrong:
            raise CourseworkError(f"{_where(name, None)}: cells {wrong} are not solution cells (those are {cells})")
        cells = list(only)
    for index in cells:
        cell = out.cells[index]
        cell.source = stub_source(cell.source, name=name, cell=index)
        tags = [t for t in _tags(cell) if t not in SOLUTION_TAGS]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
        cell.metadata.pop("jupyter", None)        # source_hidden / outputs_hidden set by an editor
    _clear_outputs(out)
    if colab_path is not None:
        badge = _badge_cell(colab_path)
        _new_id(out, badge)
        out.cells.insert(0, badge)
    return out


def instructor_notebook(nb, *, student_colab_path: str | PurePosixPath | None = None, name: str = ""):
    """An instructor copy: solutions in place (the convention checked), outputs cleared, a note on top."""
    out = copy.deepcopy(nb)
    solution_cells(out, name=name)
    _clear_outputs(out)
    text = ("**Instructor version.** This copy keeps the reference solutions (between `# BEGIN SOLUTION` and "
            "`# END SOLUTION`); do not hand it out.")
    if student_colab_path is not None:
        text += f" Students get the [student version]({colab_url(student_colab_path)})."
    note = nbformat.v4.new_markdown_cell(text)
    note.metadata["tags"] = [INSTRUCTOR_NOTE]
    _new_id(out, note)
    out.cells.insert(0, note)
    return out


# --- theory pages -------------------------------------------------------------------------------

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|:{3,})\{(?P<name>[\w-]+)\}")


def _closing(line: str, fence: str) -> bool:
    text = line.strip()
    return len(text) >= len(fence) and set(text) == {fence[0]}


def strip_theory_solutions(text: str, *, name: str = "") -> str:
    """Markdown with every sphinx-exercise solution removed: ``solution-start`` ... ``solution-end``
    (both directives with their closing fences) and plain ``solution`` directives, entirely."""
    lines = text.splitlines(keepends=True)
    out, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or m["name"] not in ("solution", "solution-start"):
            if m and m["name"] == "solution-end":
                raise CourseworkError(f"{name or 'page'}, line {i + 1}: `solution-end` without `solution-start`")
            out.append(lines[i])
            i += 1
            continue
        start, fence = i, m["fence"]
        if m["name"] == "solution-start":
            i += 1
            while i < len(lines) and not ((e := _FENCE.match(lines[i])) and e["name"] == "solution-end"):
                i += 1
            if i == len(lines):
                raise CourseworkError(f"{name or 'page'}, line {start + 1}: `solution-start` never ended")
            fence = e["fence"]
        # skip to the directive's closing fence
        i += 1
        while i < len(lines) and not _closing(lines[i], fence):
            i += 1
        if i == len(lines):
            raise CourseworkError(f"{name or 'page'}, line {start + 1}: solution directive never closed")
        i += 1
        # drop one blank line after the block so removals leave no runs of empty lines
        if i < len(lines) and not lines[i].strip() and out and not out[-1].strip():
            i += 1
    return "".join(out)


# --- files ---------------------------------------------------------------------------------------

def write_versions(notebooks: list[Path], root: Path, out: Path | None, instructor_out: Path | None) -> list[Path]:
    """Write the student copy of each notebook (``root``-relative path) under ``out`` and the instructor copy
    under ``instructor_out`` (either may be None). Every notebook is checked before anything is written."""
    root = root.resolve()
    jobs = []
    for path in notebooks:
        path = Path(path).resolve()
        try:
            rel = PurePosixPath(path.relative_to(root).as_posix())
        except ValueError:
            raise CourseworkError(f"{path} is not inside the repository {root}") from None
        nb = nbformat.read(path, as_version=4)
        student = student_notebook(nb, colab_path=student_path(rel), name=str(rel))
        instructor = instructor_notebook(nb, student_colab_path=student_path(rel), name=str(rel))
        jobs.append((rel, student, instructor))
    written = []
    for rel, student, instructor in jobs:
        for folder, version in ((out, student), (instructor_out, instructor)):
            if folder is None:
                continue
            target = Path(folder) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(version, target)
            written.append(target)
    return written
