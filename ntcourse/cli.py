"""The command line: ``python -m ntcourse {list,run,student} ...``.

``run`` executes a named experiment from :mod:`ntcourse.experiments` headless (with a progress
bar) and stores its result in the cache, so a GPU run can happen outside a notebook and the
notebook then loads it. ``student`` writes the student and instructor versions of the problems
notebooks (:mod:`ntcourse.coursework`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import cache, experiments
from .runtime import SCALES, get_device


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ntcourse", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the named experiments and whether their results are cached")
    run = sub.add_parser("run", help="run a named experiment and store its result in the cache")
    run.add_argument("name", help="experiment name (see `python -m ntcourse list`)")
    run.add_argument("--scale", choices=SCALES, default="full", help="configuration to run (default: full)")
    run.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best available)")
    run.add_argument("--seed", type=int, default=None, help="seed (default: NTCOURSE_SEED or 0)")
    run.add_argument("--recompute", action="store_true", help="ignore a stored result and run again")
    run.add_argument("--cache", default=None, help="cache folder (default: NTCOURSE_CACHE or ~/.cache/ntcourse)")
    student = sub.add_parser("student", help="write student (stubbed) and instructor versions of problems notebooks")
    student.add_argument("notebooks", nargs="*", type=Path,
                         help="notebooks to convert (default: every chapters/*/problems.ipynb)")
    student.add_argument("--out", type=Path, default=Path("student"),
                         help="folder for the student copies, mirroring the repository layout (default: "
                              "student/, the path their Colab badges point at)")
    student.add_argument("--instructor-out", type=Path, default=Path("_build/instructor"),
                         help="folder for the instructor copies (default: _build/instructor, not committed)")
    student.add_argument("--root", type=Path, default=Path("."),
                         help="repository root the notebook paths are relative to (default: .)")
    return p


def _student(args) -> int:
    from . import coursework     # needs nbformat, which `pip install ntcourse` does not install

    root = args.root
    notebooks = args.notebooks or sorted(root.glob("chapters/*/problems.ipynb"))
    if not notebooks:
        print(f"error: no chapters/*/problems.ipynb under {root.resolve()}", file=sys.stderr)
        return 2
    try:
        written = coursework.write_versions(notebooks, root, args.out, args.instructor_out)
    except (coursework.CourseworkError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name in sorted(experiments.REGISTRY):
            exp = experiments.REGISTRY[name]
            stored = ", ".join(f"{s}: {'stored' if experiments.is_cached(name, s) else 'not run'}" for s in SCALES)
            print(f"{name:28s} {exp.description}\n{'':28s} used in {exp.chapter or '-'}; {stored}")
        print(f"cache folder: {cache.cache_dir()}")
        return 0
    if args.command == "student":
        return _student(args)
    try:
        exp = experiments.get(args.name)
        device = get_device(args.device)
    except (KeyError, ValueError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    config = exp.config(args.scale, args.seed)
    print(f"running {exp.name!r} at scale {args.scale} on {device}; configuration {config}")
    start = time.perf_counter()
    out = experiments.result(exp.name, args.scale, seed=args.seed, device=device, recompute=args.recompute,
                             progress=True, root=args.cache)
    print(f"done in {time.perf_counter() - start:.1f} s; stored: "
          + ", ".join(f"{k} {tuple(v.shape)}" for k, v in sorted(out.items())))
    return 0
