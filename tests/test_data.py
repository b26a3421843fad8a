import pytest
import torch

from ntcourse import data


def test_teacher_student_shapes_reproducible_and_noise_level():
    a = data.teacher_student(2_000, 5, noise=0.0, generator=torch.Generator().manual_seed(0))
    b = data.teacher_student(2_000, 5, noise=0.0, generator=torch.Generator().manual_seed(0))
    assert a.x.shape == (2_000, 5) and a.y.shape == (2_000, 1) and len(a) == 2_000
    torch.testing.assert_close(a.y, b.y)
    noisy = data.teacher_student(2_000, 5, noise=0.5, generator=torch.Generator().manual_seed(0))
    # same teacher and inputs: the difference is the label noise alone
    assert (noisy.y - a.y).std().item() == pytest.approx(0.5, rel=0.1)


def test_digits_split_is_fixed_disjoint_and_standardised():
    train, test = data.digits("train"), data.digits("test")
    assert len(train) + len(test) == 1797 and len(test) == round(0.2 * 1797)
    assert train.x.shape[1] == 64 and train.y.dtype == torch.long
    torch.testing.assert_close(train.x.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    assert set(train.y.tolist()) == set(range(10))
    again = data.digits("train")
    torch.testing.assert_close(train.x, again.x)
    rows_train = {tuple(r) for r in train.x.tolist()}
    assert sum(tuple(r) in rows_train for r in test.x.tolist()) < 5  # a few duplicate images exist in the raw data


def test_bad_arguments():
    with pytest.raises(ValueError, match="split='val' is not accepted"):
        data.digits("val")
    with pytest.raises(ValueError, match="test_fraction must be < 1.0"):
        data.digits("train", test_fraction=1.5)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        data.teacher_student(10, 2, noise=-1.0)
