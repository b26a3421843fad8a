"""Feedback for coding exercises: compare a student's answer with a reference and say what is off.

A check prints one line when the answer is right and raises :class:`CheckFailed` (an
``AssertionError``) with a message that names the quantity, the value received, the value
expected, the relative error and a hint, when it is not. Problems notebooks call these in the
cell after each exercise.
"""

from __future__ import annotations

import math

import torch


class CheckFailed(AssertionError):
    """An exercise answer that does not match the reference."""


def _as_number(name: str, value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{name} should be a single number; your function returned a tensor of shape "
                              f"{tuple(value.shape)}.")
        value = value.item()
    if value is None:
        raise CheckFailed(f"{name}: your function returned None; did you forget `return`?")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should be a number; got {type(value).__name__}.") from None
    if not math.isfinite(value):
        raise CheckFailed(f"{name} is {value}: look for a division by zero or a log of a negative number.")
    return value


def check_close(name: str, value, expected, *, rtol: float = 1e-6, atol: float = 0.0, hint: str = "") -> float:
    """Check a number: ``|value - expected| <= atol + rtol * |expected|``. Returns the value."""
    value = _as_number(name, value)
    expected = float(expected)
    err = abs(value - expected)
    if err > atol + rtol * abs(expected):
        rel = f"{err / abs(expected):.3g} relative" if expected != 0 else f"{err:.3g} absolute"
        raise CheckFailed(
            f"{name} is off: got {value:.8g}, expected {expected:.8g} ({rel} error; allowed {rtol:g})."
            + (f" Hint: {hint}" if hint else "")
        )
    print(f"✓ {name} = {value:.8g} (expected {expected:.8g})")
    return value


def check_tensor_close(name: str, value, expected, *, rtol: float = 1e-6, atol: float = 0.0, hint: str = ""):
    """Check a tensor's shape and values; the message points at the worst entry."""
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{name} should be a torch.Tensor; got {type(value).__name__}.")
    expected = torch.as_tensor(expected, dtype=value.dtype if value.is_floating_point() else torch.float64)
    if value.shape != expected.shape:
        raise CheckFailed(f"{name} has shape {tuple(value.shape)}; expected {tuple(expected.shape)}.")
    value_d, expected_d = value.detach().double().cpu(), expected.detach().double().cpu()
    if not torch.isfinite(value_d).all():
        raise CheckFailed(f"{name} contains inf or nan.")
    gap = (value_d - expected_d).abs() - (atol + rtol * expected_d.abs())
    if (gap > 0).any():
        worst = int(gap.flatten().argmax())
        idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), value.shape)) if value.ndim else ()
        raise CheckFailed(
            f"{name} is off at index {idx}: got {value_d.flatten()[worst]:.8g}, expected "
            f"{expected_d.flatten()[worst]:.8g} (rtol {rtol:g})." + (f" Hint: {hint}" if hint else "")
        )
    print(f"✓ {name}: all {value.numel()} entries match")
    return value
