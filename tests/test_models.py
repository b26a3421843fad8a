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
