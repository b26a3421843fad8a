"""Results of expensive runs, stored on disk under a hash of their configuration.

A full-scale experiment can take an hour on a GPU; a notebook must reuse its result rather
than repeat it silently. :func:`cached` returns the stored result when one exists for the same
name, configuration and package version, and otherwise computes, stores and returns it.

Storage is safe by construction:

* results are flat dictionaries of tensors (numbers become 0-d tensors), written with
  ``torch.save`` and read back with ``torch.load(..., weights_only=True)``: nothing is ever
  unpickled, so a cache file cannot run code;
* every file is written to a temporary name in the same folder and moved into place with
  ``os.replace`` (atomic), data first and the JSON record second, so an interrupted write leaves
  no entry rather than half a one;
* the JSON record holds the SHA-256 of the data file: a truncated or altered entry is detected,
  reported and recomputed.

The folder is ``NTCOURSE_CACHE`` if set, else ``~/.cache/ntcourse``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
import tempfile
from dataclasses import asdict, is_dataclass
from typing import Callable, Mapping

import torch


FORMAT = 1  # bump when the on-disk layout changes


def cache_dir(root: str | os.PathLike | None = None) -> pathlib.Path:
    """The cache folder: ``root``, else ``NTCOURSE_CACHE``, else ``~/.cache/ntcourse``."""
    if root is None:
        root = os.environ.get("NTCOURSE_CACHE") or pathlib.Path.home() / ".cache" / "ntcourse"
    return pathlib.Path(root)


def _canonical(value, where: str):
    """Turn a configuration into plain JSON types, refusing anything whose identity is unclear."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"config keys must be strings; {where} has key {k!r}.")
            out[k] = _canonical(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"config value {where} = {value!r} is not finite.")
        return value
    raise TypeError(
        f"config value {where} has type {type(value).__name__}; use numbers, strings, booleans, lists, "
        "dicts or dataclasses of those (describe tensors by how they are made, e.g. a seed and a size)."
    )


def key(name: str, config) -> str:
    """A 16-hex-digit hash of the experiment name, its configuration and the package version."""
    from . import __version__

    if not isinstance(name, str) or not name or any(c in name for c in "/\\\0"):
        raise ValueError(f"name must be a non-empty string without path separators; got {name!r}.")
    blob = json.dumps(
        {"name": name, "config": _canonical(config, "config"), "version": __version__, "format": FORMAT},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _paths(name: str, config, root) -> tuple[pathlib.Path, pathlib.Path]:
    stem = f"{name}-{key(name, config)}"
    folder = cache_dir(root)
    return folder / f"{stem}.pt", folder / f"{stem}.json"


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: pathlib.Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _as_tensors(result) -> dict[str, torch.Tensor]:
    if not isinstance(result, Mapping) or not result:
        raise TypeError(f"a cached result must be a non-empty dict of tensors or numbers; got {type(result).__name__}.")
    out = {}
    for k, v in result.items():
        if not isinstance(k, str):
            raise TypeError(f"result keys must be strings; got {k!r}.")
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().cpu().contiguous()
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = torch.tensor(v, dtype=torch.float64 if isinstance(v, float) else torch.int64)
        else:
            raise TypeError(f"result[{k!r}] has type {type(v).__name__}; store tensors or numbers only.")
    return out


def save(name: str, config, result, root=None) -> pathlib.Path:
    """Store ``result`` (dict of tensors/numbers) for ``name`` and ``config``; returns the data file's path."""
    data_path, record_path = _paths(name, config, root)
    tensors = _as_tensors(result)
    _atomic_write(data_path, lambda tmp: torch.save(tensors, tmp))
    record = {"name": name, "key": key(name, config), "config": _canonical(config, "config"),
              "sha256": _sha256(data_path), "format": FORMAT}
    _atomic_write(record_path, lambda tmp: pathlib.Path(tmp).write_text(json.dumps(record, indent=1, sort_keys=True)))
    return data_path


def load(name: str, config, root=None) -> dict[str, torch.Tensor] | None:
    """The stored result for ``name`` and ``config``, or ``None`` if there is none or it is damaged.

    A damaged entry (missing record, checksum mismatch, unreadable file, or a file that would
    need unpickling arbitrary objects) is reported with one printed line and removed.
    """
    data_path, record_path = _paths(name, config, root)
    if not data_path.exists() or not record_path.exists():
        return None
    try:
        record = json.loads(record_path.read_text())
        if record.get("sha256") != _sha256(data_path):
            raise ValueError("checksum mismatch (truncated or altered file)")
        result = torch.load(data_path, map_location="cpu", weights_only=True)
        if not isinstance(result, dict) or not all(isinstance(v, torch.Tensor) for v in result.values()):
            raise ValueError("not a dict of tensors")
    except Exception as err:  # any damage means: recompute
        print(f"ntcourse.cache: ignoring damaged entry {data_path.name} ({type(err).__name__}: {err}); recomputing.")
        for p in (data_path, record_path):
            p.unlink(missing_ok=True)
        return None
    return result


def cached(name: str, config, compute: Callable[[], Mapping], root=None, recompute: bool = False,
           quiet: bool = False) -> dict[str, torch.Tensor]:
    """Return the stored result for ``name``/``config``, or run ``compute()``, store and return it.

    Prints one line saying which happened (unless ``quiet``), so a reader always knows whether a
    number comes from a stored run. ``recompute=True`` ignores any stored result.
    """
    if not callable(compute):
        raise TypeError(f"compute must be a function returning a dict of tensors; got {type(compute).__name__}.")
    if not recompute:
        hit = load(name, config, root)
        if hit is not None:
            if not quiet:
                print(f"ntcourse.cache: loaded stored result of {name!r} ({_paths(name, config, root)[0]}).")
            return hit
    result = compute()
    path = save(name, config, result, root)
    if not quiet:
        print(f"ntcourse.cache: computed and stored {name!r} ({path}).")
    return load(name, config, root)  # read back: the caller sees exactly what a later run will load
