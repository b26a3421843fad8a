"""Interactive explorers that degrade to a static figure.

A lab draws its figure once with default values (that static figure is what the website
shows, since a built page has no kernel) and then offers :func:`explorer`, which redraws the
same function as the reader moves the controls in Jupyter or Colab.
"""

from __future__ import annotations

from typing import Any, Callable


def _control(name: str, spec: Any, value: Any):
    import ipywidgets as w

    if isinstance(spec, w.ValueWidget):
        return spec
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec):
        return w.ToggleButtons(options=list(spec), value=value if value is not None else spec[0], description=name)
    if isinstance(spec, tuple) and len(spec) in (2, 3) and all(isinstance(s, (int, float)) for s in spec):
        lo, hi = spec[0], spec[1]
        if all(isinstance(s, int) for s in spec):
            step = spec[2] if len(spec) == 3 else 1
            return w.IntSlider(min=lo, max=hi, step=step, value=value if value is not None else lo, description=name)
        step = spec[2] if len(spec) == 3 else (hi - lo) / 100
        return w.FloatSlider(
            min=lo, max=hi, step=step, value=value if value is not None else lo, description=name,
            continuous_update=False, readout_format=".3g",
        )
    raise TypeError(
        f"control {name!r}: use a (min, max[, step]) tuple of numbers, a list of option strings, "
        f"or an ipywidgets value widget; got {spec!r}."
    )


def explorer(fn: Callable[..., None], controls: dict[str, Any], defaults: dict[str, Any] | None = None):
    """Build controls for ``fn(**values)`` and redraw its figure whenever a control changes.

    Args:
        fn: draws a matplotlib figure (and calls ``plt.show()``) for keyword arguments named as
            in ``controls``.
        controls: name -> ``(min, max[, step])`` (a slider; integers give an integer slider),
            a list of strings (toggle buttons) or a ready-made ipywidgets widget.
        defaults: starting values (default: each control's minimum / first option).

    Returns:
        An ``ipywidgets.VBox``; display it as the last expression of a cell.
    """
    import ipywidgets as w

    if not callable(fn):
        raise TypeError(f"fn must be a function that draws a figure; got {type(fn).__name__}.")
    defaults = dict(defaults or {})
    unknown = set(defaults) - set(controls)
    if unknown:
        raise ValueError(f"defaults name controls that do not exist: {sorted(unknown)}; controls are {sorted(controls)}.")
    widgets = {name: _control(name, spec, defaults.get(name)) for name, spec in controls.items()}
    out = w.Output()

    def redraw(change=None):
        out.outputs = _render(fn, {name: c.value for name, c in widgets.items()})

    for c in widgets.values():
        c.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox(list(widgets.values()), layout=w.Layout(flex_flow="row wrap")), out])


def _render(fn: Callable[..., None], values: dict[str, Any]) -> tuple[dict, ...]:
    """Run ``fn`` and return what it displayed, as Output-widget outputs.

    The outputs are captured and handed to the widget as data, rather than drawn inside a
    ``with out:`` block: that block makes the kernel redirect messages by parent id, and
    notebook runners that emulate it (nbclient, used by the book build and the tests) were
    seen to stall on it. Captured data behaves the same in Jupyter and Colab.
    """
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        fn(**values)
    outputs = []
    if captured.stdout:
        outputs.append({"output_type": "stream", "name": "stdout", "text": captured.stdout})
    for item in captured.outputs:
        outputs.append({"output_type": "display_data", "data": item.data, "metadata": item.metadata or {}})
    return tuple(outputs)
