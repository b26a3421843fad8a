"""Small datasets that need no download: teacher-student regression and scikit-learn's digits.

Every function returns float tensors and takes a ``torch.Generator`` (or a seed) for whatever it
draws, so a dataset is reproducible on its own, independent of the global random state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import _validate as check


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs ``x`` ``(N, d)`` and targets ``y`` ``(N, ...)`` of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


def teacher_student(n: int, d: int, hidden: int = 8, noise: float = 0.0, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float32) -> Dataset:
    """Regression targets from a random one-hidden-layer tanh teacher: ``y = a . tanh(W x / sqrt(d)) + noise``.

    ``x`` is standard normal ``(n, d)``; ``y`` has shape ``(n, 1)``; ``noise`` is the standard
    deviation of additive Gaussian label noise (so the irreducible loss is ``noise**2 / 2`` for
    the squared loss ``(f - y)^2 / 2``).
    """
    n = check.integer("n", n, minimum=1)
    d = check.integer("d", d, minimum=1)
    hidden = check.integer("hidden", hidden, minimum=1)
    noise = check.real("noise", noise, nonnegative=True)
    w = torch.randn(hidden, d, generator=generator, dtype=dtype)
    a = torch.randn(hidden, generator=generator, dtype=dtype) / hidden**0.5
    x = torch.randn(n, d, generator=generator, dtype=dtype)
    y = torch.tanh(x @ w.T / d**0.5) @ a
    y = y + noise * torch.randn(n, generator=generator, dtype=dtype)
    return Dataset(x=x, y=y[:, None])


def digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0,
           dtype: torch.dtype = torch.float32) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, ships with scikit-learn: no download).

    Inputs are the 64 pixel values standardised with the *training* split's mean and standard
    deviation; targets are integer labels ``0..9`` (``torch.long``). The train/test split is a
    fixed permutation drawn with ``seed``, the same on every machine.
    """
    check.choice("split", split, ("train", "test"))
    test_fraction = check.real("test_fraction", test_fraction, positive=True, below=1.0)
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.tensor(raw.data, dtype=torch.float64)
    y = torch.tensor(raw.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = round(test_fraction * len(y))
    test_idx, train_idx = order[:n_test], order[n_test:]
    mean, std = x[train_idx].mean(0), x[train_idx].std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))   # corner pixels are constant in the training set
    idx = train_idx if split == "train" else test_idx
    return Dataset(x=((x[idx] - mean) / std).to(dtype), y=y[idx])
