"""The command line: ``python -m ntcourse {list,run} ...``.

``run`` executes a named experiment from :mod:`ntcourse.experiments` headless (with a progress
bar) and stores its result in the cache, so a GPU run can happen outside a notebook and the
notebook then loads it.
"""

from __future__ import annotations

import argparse
import sys
import time

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
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name in sorted(experiments.REGISTRY):
            exp = experiments.REGISTRY[name]
            stored = ", ".join(f"{s}: {'stored' if experiments.is_cached(name, s) else 'not run'}" for s in SCALES)
            print(f"{name:28s} {exp.description}\n{'':28s} used in {exp.chapter or '-'}; {stored}")
        print(f"cache folder: {cache.cache_dir()}")
        return 0
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
