import math

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


# --------------------------------------------------------------------------- Markov-chain language data

def test_markov_chain_rows_stationary_law_and_known_draw():
    chain = data.markov_chain(vocab=32, alpha=1.0, seed=0)
    p, pi = chain.transition, chain.stationary
    assert p.shape == (32, 32) and p.dtype == torch.float64 and chain.vocab == 32
    assert (p >= 0).all() and torch.allclose(p.sum(1), torch.ones(32, dtype=torch.float64), atol=1e-14, rtol=0)
    assert pi.shape == (32,) and (pi >= 0).all() and abs(pi.sum().item() - 1) < 1e-14
    assert (pi @ p - pi).abs().max().item() < 1e-12
    h_rows = -(p * p.log()).sum(1)
    assert chain.entropy_rate == pytest.approx((pi * h_rows).sum().item(), abs=1e-12)
    # the rows come from NumPy's default_rng(seed).dirichlet: the same chain everywhere (a regression value)
    assert chain.entropy_rate == pytest.approx(3.07795, abs=1e-4)
    assert data.markov_chain(32, 0.3, 0).entropy_rate == pytest.approx(2.47602, abs=1e-4)
    assert data.markov_chain(32, 0.3, 0).entropy_rate < chain.entropy_rate < torch.log(torch.tensor(32.0)).item()


def test_entropy_rate_is_the_sampled_mean_log_loss():
    chain = data.markov_chain(vocab=32, alpha=1.0, seed=3)
    seq = data.sample_sequences(chain, 2_000, 64, generator=torch.Generator().manual_seed(1))
    assert seq.shape == (2_000, 64) and seq.dtype == torch.long
    nll = -chain.transition[seq[:, :-1], seq[:, 1:]].log()   # (2000, 63): the loss of the true model
    per_seq = nll.mean(1)   # sequences are independent: their means give an honest standard error
    se = per_seq.std().item() / len(per_seq) ** 0.5
    assert abs(per_seq.mean().item() - chain.entropy_rate) < 4 * se
    # the first token is drawn from pi, so every position has the stationary law (chi-square-ish check)
    freq = torch.bincount(seq[:, 0], minlength=32).double() / 2_000
    assert (freq - chain.stationary).abs().max().item() < 5 * (0.1 / 2_000) ** 0.5
    ctx, nxt = data.sample_pairs(chain, 100_000, generator=torch.Generator().manual_seed(2))
    assert ctx.shape == nxt.shape == (100_000,) and ctx.dtype == nxt.dtype == torch.long
    nll = -chain.transition[ctx, nxt].log()
    assert abs(nll.mean().item() - chain.entropy_rate) < 4 * nll.std().item() / 100_000**0.5


def test_excess_is_kl_zero_at_truth_nonnegative_and_hand_computed():
    chain = data.markov_chain(vocab=16, alpha=0.5, seed=1)
    ctx = torch.arange(16)
    truth = chain.excess(chain.transition.log() + 3.0, ctx)   # softmax ignores a constant shift
    assert truth.shape == (16,) and truth.abs().max().item() < 1e-12
    logits = torch.randn(5, 16, 16, generator=torch.Generator().manual_seed(0))
    kl = chain.excess(logits, ctx)   # (5, 16, 16) logits with contexts 0..15 broadcast: (5, 16)
    assert kl.shape == (5, 16) and (kl >= 0).all() and (kl > 0).all()
    assert chain.excess(logits[0, 3], torch.tensor(3)).item() == pytest.approx(kl[0, 3].item(), rel=1e-12)
    # two states by hand: P = [[0.9, 0.1], [0.2, 0.8]], model q = (0.5, 0.5) at context 0, (0.25, 0.75) at context 1
    two = data.markov_chain_from(torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64))
    assert two.stationary.tolist() == pytest.approx([2 / 3, 1 / 3], abs=1e-14)
    h2 = lambda a: -(a * math.log(a) + (1 - a) * math.log(1 - a))
    assert two.entropy_rate == pytest.approx(2 / 3 * h2(0.9) + 1 / 3 * h2(0.8), abs=1e-14)
    q = torch.tensor([[0.0, 0.0], [math.log(0.25), math.log(0.75)]], dtype=torch.float64)
    expect = [0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5),
              0.2 * math.log(0.2 / 0.25) + 0.8 * math.log(0.8 / 0.75)]
    assert two.excess(q, torch.tensor([0, 1])).tolist() == pytest.approx(expect, abs=1e-14)
    # a zero-probability successor contributes nothing
    zero = data.markov_chain_from(torch.tensor([[0.0, 1.0], [0.5, 0.5]]))
    assert zero.excess(torch.tensor([0.0, 0.0]), torch.tensor(0)).item() == pytest.approx(math.log(2), abs=1e-14)


def test_markov_sampling_is_reproducible_with_a_generator():
    chain = data.markov_chain(vocab=8, alpha=0.3, seed=5)
    a = data.sample_sequences(chain, 50, 20, generator=torch.Generator().manual_seed(7))
    b = data.sample_sequences(chain, 50, 20, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() < 8
    assert (chain.transition[a[:, :-1], a[:, 1:]] > 0).all()   # never a zero-probability transition
    c1, n1 = data.sample_pairs(chain, 300, generator=torch.Generator().manual_seed(9))
    c2, n2 = data.sample_pairs(chain, 300, generator=torch.Generator().manual_seed(9))
    assert torch.equal(c1, c2) and torch.equal(n1, n2)
    assert torch.equal(data.markov_chain(8, 0.3, 5).transition, chain.transition)
    assert not torch.equal(data.markov_chain(8, 0.3, 6).transition, chain.transition)


def test_markov_bad_arguments():
    chain = data.markov_chain(vocab=4)
    with pytest.raises(ValueError, match="vocab must be an integer >= 2"):
        data.markov_chain(vocab=1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        data.markov_chain(alpha=0.0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        data.markov_chain(seed=0.5)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        data.sample_pairs(chain, 0)
    with pytest.raises(ValueError, match="length must be an integer >= 1"):
        data.sample_sequences(chain, 3, 0)
    with pytest.raises(TypeError, match="chain must be a MarkovChain"):
        data.sample_pairs("chain", 3)
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., 4\)"):
        chain.excess(torch.zeros(3, 5), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="context must be an integer"):
        chain.excess(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="outside 0..3"):
        chain.excess(torch.zeros(3, 4), torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="rows must sum to 1"):
        data.markov_chain_from(torch.tensor([[0.5, 0.4], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="negative entries"):
        data.markov_chain_from(torch.tensor([[1.5, -0.5], [0.5, 0.5]]))
