"""Datasets: teacher-student regression and scikit-learn's digits (no download), CIFAR-10 from its binary files,
and sequences from a random Markov chain whose loss floor is known exactly.

CIFAR-10 (:func:`cifar10`) is read from the official binary files, which the full-scale
experiments download once (:func:`download_cifar10`); quick mode uses :func:`synthetic_images`, a
stand-in of the same shape made on the spot.

:func:`markov_chain` draws a random first-order Markov chain over ``vocab`` tokens: a language
model's data with an exactly known floor (the entropy rate) and an exact excess loss
(:meth:`MarkovChain.excess`), for the bigram and transformer labs of chapter 6.

Every function returns float tensors and takes a ``torch.Generator`` (or a seed) for whatever it
draws, so a dataset is reproducible on its own, independent of the global random state.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

import numpy as np
import torch

from . import _validate as check


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs ``x`` ``(N, d)`` (images: ``(N, C, H, W)``) and targets ``y`` ``(N, ...)`` of one split."""

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


# --------------------------------------------------------------------------- images: CIFAR-10 and a synthetic stand-in

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch.bin",)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_CIFAR_RECORD = 1 + 3 * 32 * 32   # one label byte, then 1024 red, 1024 green, 1024 blue pixel bytes (row-major)


def data_dir(root: str | os.PathLike | None = None) -> pathlib.Path:
    """The folder that holds downloaded data sets: ``root``, else ``NTCOURSE_DATA``, else ``~/.cache/ntcourse/data``."""
    if root is None:
        root = os.environ.get("NTCOURSE_DATA") or pathlib.Path.home() / ".cache" / "ntcourse" / "data"
    return pathlib.Path(root).expanduser()


def _cifar_folder(root) -> pathlib.Path:
    base = data_dir(root)
    return base if base.name == CIFAR10_FOLDER else base / CIFAR10_FOLDER


def _read_cifar_file(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """Records of one binary batch file: images ``(n, 3, 32, 32)`` uint8 (CHW) and labels ``(n,)`` uint8."""
    size = path.stat().st_size
    if size == 0 or size % _CIFAR_RECORD:
        raise ValueError(
            f"{path} has {size} bytes, which is not a positive multiple of the {_CIFAR_RECORD}-byte CIFAR-10 record "
            f"(1 label byte + 3072 pixel bytes): the file is truncated or is not from the binary version. Delete it "
            f"and download {CIFAR10_URL} again (or call ntcourse.data.download_cifar10())."
        )
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = raw[:, 0]
    if labels.max() > 9:
        raise ValueError(f"{path} has a label {int(labels.max())} outside 0..9: it is not a CIFAR-10 binary batch file.")
    return raw[:, 1:].reshape(-1, 3, 32, 32), labels


def _cifar_missing_message(folder: pathlib.Path, missing: list[str]) -> str:
    return (
        f"CIFAR-10 (binary version) not found: missing {missing} in {folder}. Download {CIFAR10_URL} "
        f"(about 162 MB, MD5 {CIFAR10_MD5}) and extract it so that the folder {folder} holds "
        f"{', '.join(CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES)}; e.g. `tar -xzf cifar-10-binary.tar.gz -C {folder.parent}`, "
        "or run ntcourse.data.download_cifar10(). The data folder is the `root` argument, else the NTCOURSE_DATA "
        "environment variable, else ~/.cache/ntcourse/data. (The python/pickled version is not read: it would need unpickling.)"
    )


def cifar10(root: str | os.PathLike | None = None, split: str = "train", dtype: torch.dtype = torch.float32,
            limit: int | None = None) -> Dataset:
    """CIFAR-10 from the official *binary* files (``cifar-10-batches-bin``): 50,000 training and 10,000 test images.

    Reads ``data_batch_1.bin`` ... ``data_batch_5.bin`` (train) or ``test_batch.bin`` (test) from
    ``root/cifar-10-batches-bin`` (``root``: see :func:`data_dir`; a ``root`` that *is* the
    ``cifar-10-batches-bin`` folder is accepted too). Each record is one label byte followed by the
    3,072 pixel bytes of a 32x32 colour image, channel by channel (red, green, blue), rows top to
    bottom. Only raw bytes are read: the pickled "python version" of the data set is never used.

    Returns a :class:`Dataset` with ``x`` ``(N, 3, 32, 32)`` in ``dtype``: pixels scaled to ``[0, 1]``,
    then standardised per channel with the mean and standard deviation of the *training* split
    (whatever ``split`` is), and ``y`` ``(N,)`` ``torch.long`` labels ``0..9`` (names in
    ``ntcourse.data.CIFAR10_CLASSES``), in file order. ``limit`` keeps the first ``limit`` images only (the
    statistics still come from the whole training split).

    Raises:
        FileNotFoundError: a file is missing; the message says where to download the data and where to put it.
        ValueError: a file's size is not a multiple of the 3,073-byte record (truncated download).
    """
    check.choice("split", split, ("train", "test"))
    if limit is not None:
        limit = check.integer("limit", limit, minimum=1)
    folder = _cifar_folder(root)
    missing = [f for f in CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(_cifar_missing_message(folder, missing))
    train = [_read_cifar_file(folder / f) for f in CIFAR10_TRAIN_FILES]
    # per-channel statistics of the training pixels, exactly, from the histogram of byte values per channel
    counts = np.zeros((3, 256), dtype=np.float64)
    for images, _ in train:
        for ch in range(3):
            counts[ch] += np.bincount(images[:, ch].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64) / 255.0
    total = counts.sum(1)
    mean = (counts * values).sum(1) / total
    var = (counts * (values[None, :] - mean[:, None]) ** 2).sum(1) / (total - 1)
    std = np.where(var > 0, np.sqrt(var), 1.0)
    if split == "train":
        images, labels = np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])
    else:
        images, labels = _read_cifar_file(folder / CIFAR10_TEST_FILES[0])
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    scale = torch.tensor(1.0 / (255.0 * std), dtype=torch.float64)[None, :, None, None]
    shift = torch.tensor(mean / std, dtype=torch.float64)[None, :, None, None]
    x = torch.from_numpy(images).to(dtype) * scale.to(dtype) - shift.to(dtype)   # (pixel/255 - mean) / std
    return Dataset(x=x, y=torch.from_numpy(labels.astype(np.int64)))


def download_cifar10(root: str | os.PathLike | None = None, url: str = CIFAR10_URL, quiet: bool = False) -> pathlib.Path:
    """Fetch the binary CIFAR-10 archive, check its MD5, extract it under ``root``; return the batch folder.

    Does nothing when the six batch files are already there. Used by the full-scale experiment only
    (``data="cifar10"`` with ``download`` on): nothing in quick mode or in the tests downloads.
    The archive is verified (MD5 ``c32a1d4a...``) before anything is extracted, and only the
    regular files of ``cifar-10-batches-bin/`` are extracted from it.
    """
    import hashlib
    import tarfile
    import tempfile
    import urllib.request

    folder = _cifar_folder(root)
    if all((folder / f).is_file() for f in CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cifar-10-binary.", suffix=".tar.gz", dir=folder.parent)
    os.close(fd)
    try:
        if not quiet:
            print(f"ntcourse.data: downloading {url} to {folder.parent} ...")
        md5 = hashlib.md5()
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                md5.update(chunk)
                out.write(chunk)
        if md5.hexdigest() != CIFAR10_MD5:
            raise ValueError(f"the file downloaded from {url} has MD5 {md5.hexdigest()}, not {CIFAR10_MD5}: "
                             "a damaged or different file; nothing was extracted. Try again.")
        with tarfile.open(tmp, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and pathlib.PurePosixPath(m.name).parent.name == CIFAR10_FOLDER
                       and pathlib.PurePosixPath(m.name).name in CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES]
            folder.mkdir(parents=True, exist_ok=True)
            for m in members:
                source = tar.extractfile(m)
                with open(folder / pathlib.PurePosixPath(m.name).name, "wb") as out:
                    out.write(source.read())
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    missing = [f for f in CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(_cifar_missing_message(folder, missing))
    return folder


def synthetic_images(n: int, split: str = "train", num_classes: int = 10, noise: float = 1.0, seed: int = 0,
                     dtype: torch.dtype = torch.float32) -> Dataset:
    """A learnable stand-in for CIFAR-10 of the same shape, made on the spot (no download).

    Each class has a smooth random template (a ``3 x 4 x 4`` Gaussian pattern upsampled bilinearly to
    ``32 x 32``, drawn with ``seed``, the same for both splits); an image is its class template plus
    independent Gaussian pixel noise of standard deviation ``noise``, rescaled to unit variance (the
    task is easy on purpose: quick mode checks the pipeline, not the science). Labels are balanced
    (``i mod num_classes``, shuffled). The two splits
    use different draws (``seed + 1`` for train, ``seed + 2`` for test).

    Returns ``x`` ``(n, 3, 32, 32)`` in ``dtype`` (roughly zero mean, unit variance per channel) and
    ``y`` ``(n,)`` ``torch.long``.
    """
    n = check.integer("n", n, minimum=1)
    check.choice("split", split, ("train", "test"))
    num_classes = check.integer("num_classes", num_classes, minimum=2)
    noise = check.real("noise", noise, nonnegative=True)
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(num_classes, 3, 4, 4, generator=g, dtype=torch.float64)
    templates = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
    templates = templates / templates.std(dim=(1, 2, 3), keepdim=True)
    g = torch.Generator().manual_seed(seed + (1 if split == "train" else 2))
    y = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]
    x = templates[y] + noise * torch.randn(n, 3, 32, 32, generator=g, dtype=torch.float64)
    x = x / (1.0 + noise**2) ** 0.5
    return Dataset(x=x.to(dtype), y=y)


# --------------------------------------------------------------------------- language: a random Markov chain

@dataclass(frozen=True, eq=False)
class MarkovChain:
    """A first-order Markov chain over ``vocab`` tokens: next-token data with an exactly known loss floor.

    ``transition[i, j] = P(next = j | last = i)`` (``(V, V)`` float64, rows sum to 1); ``stationary``
    is its stationary law ``pi`` (``pi P = pi``); ``entropy_rate = sum_i pi_i H(P_i)`` in nats per
    token is the smallest expected cross-entropy any next-token predictor can reach on
    stationary data. A model's excess over that floor at context ``i`` is the Kullback-Leibler
    divergence ``KL(P_i || q)`` (:meth:`excess`).
    """

    transition: torch.Tensor
    stationary: torch.Tensor
    entropy_rate: float

    @property
    def vocab(self) -> int:
        """Number of tokens ``V``."""
        return self.transition.shape[0]

    def excess(self, logits: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """KL(P[context] || softmax(logits)), in nats, shape ``logits.shape[:-1]``.

        ``logits`` ``(..., V)``: a model's next-token logits; ``context`` ``(...)`` long: the last
        token seen (its shape must broadcast with ``logits.shape[:-1]``; e.g. ``logits`` ``(R, V, V)``
        for ``R`` bigram tables and ``context = torch.arange(V)``). The expected cross-entropy of the
        model at that context is ``H(P_context) + excess``; the excess is ``>= 0`` and vanishes at
        ``logits = log P[context]`` (plus any constant). Computed in float64 (float32 on devices
        without float64) on ``logits``' device; entries with ``P = 0`` contribute 0.
        """
        if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
            raise TypeError(f"logits must be a floating tensor of shape (..., {self.vocab}); got {check._show(logits)}"
                            f"{'' if not isinstance(logits, torch.Tensor) else ' of dtype ' + str(logits.dtype)}.")
        check.same_trailing_dim("logits", logits, self.vocab, "the chain's vocabulary")
        context = torch.as_tensor(context, device=logits.device)
        if context.is_floating_point() or context.dtype == torch.bool:
            raise TypeError(f"context must be an integer (long) tensor of tokens; got dtype {context.dtype}.")
        if context.numel() and (int(context.min()) < 0 or int(context.max()) >= self.vocab):
            raise ValueError(f"context holds tokens outside 0..{self.vocab - 1}: "
                             f"min {int(context.min())}, max {int(context.max())}.")
        try:
            shape = torch.broadcast_shapes(tuple(context.shape), tuple(logits.shape[:-1]))
        except RuntimeError:
            raise ValueError(f"context shape {tuple(context.shape)} does not broadcast with logits.shape[:-1] = "
                             f"{tuple(logits.shape[:-1])}.") from None
        dtype = torch.float32 if logits.device.type == "mps" else torch.float64
        p = self.transition.to(device=logits.device, dtype=dtype)[context.long()]
        logq = torch.log_softmax(logits.to(dtype), dim=-1)
        kl = (torch.special.xlogy(p, p) - torch.where(p > 0, p * logq, torch.zeros_like(logq))).sum(-1)
        return kl.expand(shape).clamp_min(0.0)


def _stationary(transition: torch.Tensor) -> torch.Tensor:
    """Stationary law of a row-stochastic matrix: least squares on ``pi (P - I) = 0, sum pi = 1``, then power steps."""
    v = transition.shape[0]
    a = torch.cat([transition.T - torch.eye(v, dtype=transition.dtype), torch.ones(1, v, dtype=transition.dtype)])
    b = torch.zeros(v + 1, dtype=transition.dtype)
    b[-1] = 1.0
    pi = torch.linalg.lstsq(a, b[:, None]).solution[:, 0].clamp_min(0.0)
    for _ in range(4):   # polish: a few power-iteration steps keep pi a probability vector to rounding error
        pi = pi / pi.sum()
        pi = pi @ transition
    return pi / pi.sum()


def markov_chain_from(transition) -> MarkovChain:
    """The :class:`MarkovChain` of a given ``(V, V)`` row-stochastic ``transition`` matrix (converted to float64).

    The chain should be irreducible (one stationary law); rows must be non-negative and sum to 1
    (to 1e-6, so float32 input passes; they are then renormalised in float64).
    """
    p = check.tensor("transition", transition, ndim=2, dtype=torch.float64)
    if p.shape[0] != p.shape[1] or p.shape[0] < 2:
        raise ValueError(f"transition must be a square (V, V) matrix with V >= 2; got shape {tuple(p.shape)}.")
    if (p < 0).any():
        raise ValueError(f"transition has negative entries (smallest {p.min().item():.3g}); rows must be probabilities.")
    rows = p.sum(1)
    if ((rows - 1).abs() > 1e-6).any():   # float32 input rounds rows to ~1e-7
        raise ValueError(f"transition rows must sum to 1; row sums range over [{rows.min().item():.6g}, {rows.max().item():.6g}].")
    p = p / rows[:, None]
    pi = _stationary(p)
    h_rows = -torch.special.xlogy(p, p).sum(1)
    return MarkovChain(transition=p, stationary=pi, entropy_rate=float((pi * h_rows).sum()))


def markov_chain(vocab: int = 32, alpha: float = 1.0, seed: int = 0) -> MarkovChain:
    """A random Markov chain over ``vocab`` tokens, each row of the transition matrix drawn from Dirichlet(``alpha``).

    Small ``alpha`` gives peaked rows (a low entropy rate, a few likely successors per token);
    ``alpha = 1`` gives rows uniform on the simplex. The rows are drawn with NumPy's
    ``default_rng(seed).dirichlet`` in float64, so a ``(vocab, alpha, seed)`` triple names the same
    chain on every machine (``vocab=32, seed=0``: entropy rate 3.0779 nats at ``alpha=1``, 2.4760 at
    ``alpha=0.3``).
    """
    vocab = check.integer("vocab", vocab, minimum=2)
    alpha = check.real("alpha", alpha, positive=True)
    seed = check.integer("seed", seed, minimum=0)
    rows = np.random.default_rng(seed).dirichlet(np.full(vocab, alpha), size=vocab)
    return markov_chain_from(torch.from_numpy(rows))


def _check_chain(chain) -> MarkovChain:
    if not isinstance(chain, MarkovChain):
        raise TypeError(f"chain must be a MarkovChain (from ntcourse.data.markov_chain); got {type(chain).__name__}.")
    return chain


def _draw(cumulative: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` tokens by inverse CDF: ``cumulative`` is one normalised cumulative law ``(V,)`` or one per draw ``(n, V)``."""
    u = torch.rand(n, generator=generator, dtype=cumulative.dtype)
    # right=True: the first index whose cumulative probability exceeds u, never a zero-probability token
    if cumulative.ndim == 1:
        return torch.searchsorted(cumulative, u, right=True).clamp_max(cumulative.shape[-1] - 1)
    return torch.searchsorted(cumulative, u[:, None], right=True)[:, 0].clamp_max(cumulative.shape[-1] - 1)


def _cumulative(probs: torch.Tensor) -> torch.Tensor:
    c = probs.cumsum(-1)
    return c / c[..., -1:]


def sample_sequences(chain: MarkovChain, n: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` sequences of ``length`` tokens from ``chain``, first token from its stationary law: ``(n, length)`` long.

    All sequences are drawn together (one inverse-CDF draw per position), so the data are
    stationary: every position has the law ``pi``. ``generator`` (a CPU ``torch.Generator``) makes
    the draw reproducible.
    """
    chain = _check_chain(chain)
    n = check.integer("n", n, minimum=1)
    length = check.integer("length", length, minimum=1)
    rows = _cumulative(chain.transition)
    out = torch.empty(n, length, dtype=torch.long)
    out[:, 0] = _draw(_cumulative(chain.stationary), n, generator)
    for t in range(1, length):
        out[:, t] = _draw(rows[out[:, t - 1]], n, generator)
    return out


def sample_pairs(chain: MarkovChain, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` independent (context, next) pairs: context from the stationary law ``pi``, next from ``P[context]``.

    Returns two ``(n,)`` long tensors. This is the data of the bigram model: independent pairs
    with the same law as consecutive tokens of a long stationary sequence.
    """
    chain = _check_chain(chain)
    n = check.integer("n", n, minimum=1)
    context = _draw(_cumulative(chain.stationary), n, generator)
    nxt = _draw(_cumulative(chain.transition)[context], n, generator)
    return context, nxt
