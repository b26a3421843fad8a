import pytest
import torch

from ntcourse import models


def test_mlp_structure_and_forward():
    net = models.mlp([5, 16, 16, 2], activation="relu", layer_norm=True)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear"]
    assert net(torch.randn(7, 5)).shape == (7, 2)
    assert sum(p.numel() for p in models.mlp([5, 16, 2]).parameters()) == 5 * 16 + 16 + 16 * 2 + 2


def test_linear_models_are_bias_free_products():
    net = models.two_layer_linear(4, 3)
    x = torch.randn(6, 4)
    torch.testing.assert_close(net(x), x @ net[0].weight.T @ net[1].weight.T)
    deep = models.deep_linear([4, 3, 3, 1])
    assert all(m.bias is None for m in deep)


def test_ensemble_equals_separately_evaluated_models():
    build = lambda: models.mlp([3, 8, 1])
    params, buffers, forward = models.ensemble(build, 4, generator_seed=0)
    x = torch.randn(10, 3)
    out = forward(params, buffers, x)
    assert out.shape == (4, 10, 1)
    torch.manual_seed(0)
    separate = [build() for _ in range(4)]
    for i, net in enumerate(separate):
        torch.testing.assert_close(out[i], net(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation='gelu' is not accepted"):
        models.mlp([2, 3], activation="gelu")
    with pytest.raises(ValueError, match="sizes needs an input and an output"):
        models.mlp([2])
    with pytest.raises(ValueError, match=r"sizes\[1\] must be an integer >= 1"):
        models.mlp([2, 0, 1])
    with pytest.raises(ValueError, match="m must be an integer >= 1"):
        models.ensemble(lambda: models.mlp([2, 1]), 0)




def test_causal_transformer_shape_and_parameter_count():
    net = models.causal_transformer()
    tokens = torch.randint(32, (3, 16))
    assert net(tokens).shape == (3, 16, 32)
    assert net(tokens[:, :5]).shape == (3, 5, 32)             # shorter sequences use the first positions
    d, v, c, m = 32, 32, 16, 128
    count = 2 * v * d + c * d + v + 4 * d * d + 4 * d + 2 * d * m + m + d
    assert count == 15_168 and sum(p.numel() for p in net.parameters()) == count
    with_ln = models.causal_transformer(layer_norm=True)       # three LayerNorms with weight and bias
    assert sum(p.numel() for p in with_ln.parameters()) == count + 3 * 2 * d
    assert not list(net.buffers())                             # parameters only: nothing to stack but parameters
    deep = models.causal_transformer(vocab=7, d_model=8, n_heads=4, n_layers=2, context=5, d_mlp=16)
    assert deep(torch.randint(7, (2, 5))).shape == (2, 5, 7)


def test_causal_transformer_is_causal(one_thread):
    torch.manual_seed(0)
    for layer_norm in (False, True):
        net = models.causal_transformer(n_layers=2, layer_norm=layer_norm)
        tokens = torch.randint(32, (4, 16))
        changed = tokens.clone()
        changed[:, 9:] = (changed[:, 9:] + 1 + torch.randint(30, (4, 7))) % 32   # every later token changes
        a, b = net(tokens), net(changed)
        torch.testing.assert_close(a[:, :9], b[:, :9], rtol=0, atol=1e-6)      # earlier logits: unchanged
        assert (a[:, 9:] - b[:, 9:]).abs().amax(-1).min() > 1e-4               # later ones do change


def test_causal_transformer_ensemble_under_vmap_and_training(one_thread):
    from ntcourse import train

    build = lambda: models.causal_transformer(d_model=16, n_heads=2, context=8)
    params, buffers, forward = models.ensemble(build, 3, generator_seed=1)
    tokens = torch.randint(32, (5, 8))
    out = forward(params, buffers, tokens)
    assert out.shape == (3, 5, 8, 32)
    torch.manual_seed(1)
    for i, net in enumerate([build() for _ in range(3)]):
        torch.testing.assert_close(out[i], net(tokens), rtol=1e-5, atol=1e-6)
    # per-replica gradients on per-replica batches, the way the Chapter 6 lab trains its replicas
    net = build()

    def loss(p, x):
        logits = torch.func.functional_call(net, p, (x[:, :-1],))
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 32), x[:, 1:].reshape(-1))

    batches = torch.randint(32, (3, 4, 9))
    grads = torch.func.vmap(torch.func.grad(loss))(params, batches)
    for i in range(3):
        one = {k: v[i].detach().clone().requires_grad_() for k, v in params.items()}
        loss(one, batches[i]).backward()
        for k in one:
            torch.testing.assert_close(grads[k][i], one[k].grad, rtol=1e-4, atol=1e-6)
    # and the package's ensemble trainer accepts it: tokens in, next tokens as targets
    x, y = tokens[:, :-1], tokens[:, 1:]
    ce = lambda logits, target: torch.nn.functional.cross_entropy(logits.reshape(-1, 32), target.reshape(-1))
    trained, history = train.train_ensemble(net, params, ce, x, y, 0.1, 3, batch_size=2,
                                            generator=torch.Generator().manual_seed(0),
                                            callbacks={"loss": lambda p: torch.func.vmap(
                                                lambda q: ce(torch.func.functional_call(net, q, (x,)), y))(p)})
    assert history["loss"].shape == (4, 3) and all(torch.isfinite(v).all() for v in trained.values())


def test_causal_transformer_bad_arguments():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        models.causal_transformer(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="exceed the context of 16 tokens"):
        models.causal_transformer()(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="vocab must be an integer >= 1"):
        models.causal_transformer(vocab=0)
