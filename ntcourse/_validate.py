"""Argument checks shared by the public functions.

Every check raises ``ValueError`` or ``TypeError`` whose message names the argument, shows
the value received and says what is accepted, so a reader can fix the call without reading
the source.
"""

from __future__ import annotations

import math
from numbers import Real

import torch


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    return repr(value)


def real(name: str, value, *, positive: bool = False, nonnegative: bool = False, below=None) -> float:
    """Return ``value`` as a finite float, checking its sign (and an optional strict upper bound)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number; got {_show(value)}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}.")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0; got {value!r}.")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}.")
    if below is not None and value >= below:
        raise ValueError(f"{name} must be < {below}; got {value!r}.")
    return value


def integer(name: str, value, *, minimum: int = 0) -> int:
    """Return ``value`` as an int, checking it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numpy as np

            if isinstance(value, np.integer):
                value = int(value)
        except ImportError:  # pragma: no cover
            pass
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer; got {_show(value)}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}.")
    return value


def tensor(name: str, value, *, ndim: int | tuple[int, ...] | None = None, dtype=None) -> torch.Tensor:
    """Return ``value`` as a floating tensor of the given number of dimensions."""
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=dtype or torch.get_default_dtype())
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a tensor (or array-like of numbers); got {type(value).__name__}.") from None
    if not value.is_floating_point():
        value = value.to(dtype or torch.get_default_dtype())
    elif dtype is not None:
        value = value.to(dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if value.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must have {want} dimension(s); got shape {tuple(value.shape)}.")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains inf or nan.")
    return value


def psd_matrix(name: str, value, *, strict: bool = False, rtol: float = 1e-6) -> torch.Tensor:
    """Check ``value`` is a symmetric positive semi-definite (or definite, ``strict``) square matrix."""
    m = tensor(name, value, ndim=2)
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be a square matrix; got shape {tuple(m.shape)}.")
    scale = m.abs().max().clamp_min(1e-30)
    if not torch.allclose(m, m.T, atol=float(rtol * scale), rtol=0.0):
        raise ValueError(f"{name} must be symmetric; |{name} - {name}.T| is up to {(m - m.T).abs().max().item():.3g}.")
    eig = torch.linalg.eigvalsh(m.double())
    smallest = eig.min().item()
    if strict and smallest <= 0:
        raise ValueError(
            f"{name} must be positive definite; its smallest eigenvalue is {smallest:.3g}."
        )
    if smallest < -rtol * float(scale):
        raise ValueError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is {smallest:.3g} < 0. "
            "A loss with a negative-curvature direction has no stationary state."
        )
    return m


def same_trailing_dim(name: str, value: torch.Tensor, dim: int, what: str) -> None:
    """Check the last axis of ``value`` has length ``dim`` (the parameter dimension of ``what``)."""
    if value.ndim == 0 or value.shape[-1] != dim:
        raise ValueError(
            f"{name} has shape {tuple(value.shape)}, but {what} has dimension {dim}: "
            f"expected shape (..., {dim})."
        )


def choice(name: str, value, accepted) -> str:
    """Check ``value`` is one of ``accepted`` (strings)."""
    if value not in accepted:
        raise ValueError(f"{name}={value!r} is not accepted; use one of {tuple(accepted)}.")
    return value
