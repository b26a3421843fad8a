import pytest
import torch

import ntcourse as nt


def test_compare_prints_prediction_measurement_ratio(capsys):
    c = nt.compare("energy", 2.0, 2.1, 0.05)
    assert c.ratio == pytest.approx(1.05) and c.rel_error == pytest.approx(0.05)
    assert capsys.readouterr().out.strip() == "energy: predicted 2, measured 2.1 ± 0.05, ratio 1.0500"
    with pytest.raises(ValueError, match="predicted is 0"):
        nt.compare("x", 0.0, 1.0)


def test_compare_table(capsys):
    rows = nt.compare_table(["a", "b"], torch.tensor([1.0, 2.0]), torch.tensor([1.1, 1.8]), header="T")
    assert [round(r.ratio, 6) for r in rows] == [1.1, 0.9]
    out = capsys.readouterr().out
    assert out.startswith("T\n") and "ratio" in out
    with pytest.raises(ValueError, match="same length"):
        nt.compare_table(["a"], torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))


def test_glue_returns_value_outside_the_book():
    assert nt.glue("x", torch.tensor(1.5)) == 1.5


def test_explorer_builds_controls_and_validates():
    import ipywidgets as w

    calls = []
    box = nt.explorer(lambda lr, n, shape: calls.append((lr, n, shape)),
                      controls={"lr": (0.01, 0.2, 0.01), "n": (1, 64), "shape": ["a", "b"]},
                      defaults={"lr": 0.05, "n": 4})
    sliders = box.children[0].children
    assert isinstance(sliders[0], w.FloatSlider) and sliders[0].value == 0.05
    assert isinstance(sliders[1], w.IntSlider) and sliders[1].value == 4
    assert isinstance(sliders[2], w.ToggleButtons) and sliders[2].value == "a"
    assert calls == [(0.05, 4, "a")]  # drawn once with the defaults
    sliders[1].value = 8
    assert calls[-1] == (0.05, 8, "a")  # and again when a control moves
    with pytest.raises(TypeError, match="control 'lr'"):
        nt.explorer(lambda lr: None, controls={"lr": "fast"})
    with pytest.raises(ValueError, match="do not exist"):
        nt.explorer(lambda lr: None, controls={"lr": (0.0, 1.0)}, defaults={"eta": 0.1})


def test_check_close_passes_and_fails_with_a_useful_message(capsys):
    from ntcourse.checks import CheckFailed, check_close, check_tensor_close

    assert check_close("ratio", 1.3416, 1.34164, rtol=1e-4) == 1.3416
    assert capsys.readouterr().out.startswith("✓ ratio = 1.3416")
    with pytest.raises(CheckFailed, match=r"ratio is off: got 1.5, expected 1.3416.*Hint: integrate"):
        check_close("ratio", 1.5, 1.3416, rtol=1e-3, hint="integrate 1/w, not w")
    with pytest.raises(CheckFailed, match="returned None"):
        check_close("ratio", None, 1.0)
    with pytest.raises(CheckFailed, match="shape"):
        check_close("ratio", torch.ones(2), 1.0)
    with pytest.raises(CheckFailed, match="is nan"):
        check_close("ratio", float("nan"), 1.0)
    check_tensor_close("grad", torch.tensor([1.0, 2.0]), [1.0, 2.0])
    with pytest.raises(CheckFailed, match=r"grad is off at index \(1,\): got 2.5"):
        check_tensor_close("grad", torch.tensor([1.0, 2.5]), [1.0, 2.0])
    with pytest.raises(CheckFailed, match="has shape"):
        check_tensor_close("grad", torch.ones(3), [1.0, 2.0])
