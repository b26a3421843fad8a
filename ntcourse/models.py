"""Small networks, built so that many copies can run as one vectorised ensemble.

Each builder returns a plain ``torch.nn.Sequential`` (:func:`resnet`'s holds residual blocks), except
:func:`causal_transformer`, a small module of plain tensor operations. An ensemble of ``M`` independently
initialised copies is :func:`ensemble`: their parameters stacked along a new leading axis
(``torch.func.stack_module_state``) and one function that evaluates all of them with
``torch.func.vmap`` -- no Python loop over models.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import _validate as check

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(sizes: Sequence[int], activation: str = "tanh", layer_norm: bool = False, bias: bool = True) -> nn.Sequential:
    """A fully connected network with layer widths ``sizes`` (input first, output last).

    ``activation`` is ``"tanh"`` or ``"relu"``; ``layer_norm=True`` puts a LayerNorm (without
    learned affine parameters) before each hidden activation.
    """
    sizes = [check.integer(f"sizes[{i}]", s, minimum=1) for i, s in enumerate(sizes)]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs an input and an output width at least; got {sizes}.")
    act = ACTIVATIONS[check.choice("activation", activation, tuple(ACTIVATIONS))]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            if layer_norm:
                layers.append(nn.LayerNorm(b, elementwise_affine=False))
            layers.append(act())
    return nn.Sequential(*layers)


def two_layer_linear(d: int, hidden: int, out: int = 1) -> nn.Sequential:
    """``x -> W2 W1 x`` without biases: the rescaling-symmetric model of Chapter 3."""
    return nn.Sequential(nn.Linear(check.integer("d", d, minimum=1), check.integer("hidden", hidden, minimum=1), bias=False),
                         nn.Linear(hidden, check.integer("out", out, minimum=1), bias=False))


def deep_linear(widths: Sequence[int]) -> nn.Sequential:
    """A product of bias-free linear maps with the given widths (input first)."""
    widths = [check.integer(f"widths[{i}]", w, minimum=1) for i, w in enumerate(widths)]
    if len(widths) < 2:
        raise ValueError(f"widths needs at least two entries; got {widths}.")
    return nn.Sequential(*[nn.Linear(a, b, bias=False) for a, b in zip(widths[:-1], widths[1:])])


def ensemble(build: Callable[[], nn.Module], m: int, generator_seed: int | None = None):
    """``M`` independently initialised copies of ``build()`` as stacked parameters and one vmapped forward.

    Returns ``(params, buffers, forward)``: ``params`` maps each parameter name to a tensor with a
    leading axis of length ``M``; ``forward(params, buffers, x)`` returns ``(M, N, ...)`` outputs for
    inputs ``x`` of shape ``(N, ...)`` shared by all models. With ``generator_seed`` the
    initialisations are reproducible (torch's global RNG is seeded with it and restored after).
    """
    m = check.integer("m", m, minimum=1)
    state = torch.random.get_rng_state()
    if generator_seed is not None:
        torch.manual_seed(generator_seed)
    try:
        models = [build() for _ in range(m)]
    finally:
        if generator_seed is not None:
            torch.random.set_rng_state(state)
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def call(p, b, x):
        return functional_call(base, (p, b), (x,))

    def forward(p, b, x):
        return vmap(call, in_dims=(0, 0, None))(p, b, x)

    return params, buffers, forward


# --------------------------------------------------------------------------- residual networks for 32x32 images

NORMS = ("batch", "none")


class _Shortcut(nn.Module):
    """He et al.'s parameter-free shortcut "option A": subsample by ``stride`` and zero-pad the new channels."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.c_out > self.c_in:
            x = nn.functional.pad(x, (0, 0, 0, 0, 0, self.c_out - self.c_in))
        return x


class GlobalAvgPool(nn.Module):
    """``(N, C, H, W) -> (N, C)``: the mean over positions (vmap-friendly, unlike ``AdaptiveAvgPool2d``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Average ``x`` of shape ``(N, C, H, W)`` over its spatial axes."""
        return x.mean(dim=(2, 3))


class BasicBlock(nn.Module):
    """``relu(norm(conv(relu(norm(conv(x))))) + shortcut(x))`` with 3x3 convolutions (He et al. 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str):
        super().__init__()
        batch = norm == "batch"
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batch)
        self.bn1 = nn.BatchNorm2d(c_out) if batch else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=not batch)
        self.bn2 = nn.BatchNorm2d(c_out) if batch else nn.Identity()
        self.shortcut = _Shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape ``(N, C_in, H, W)``; returns ``(N, C_out, H/stride, W/stride)``."""
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def resnet(depth: int = 20, width: int = 16, num_classes: int = 10, norm: str = "batch",
           in_channels: int = 3) -> nn.Sequential:
    """The CIFAR residual network of He et al. (2016, section 4.2): ResNet-20 by default (0.27 M parameters).

    ``depth = 6 n + 2`` layers with weights: a 3x3 convolution to ``width`` channels, three stages of
    ``n`` basic blocks with ``width``, ``2 width`` and ``4 width`` channels (the first block of stages 2
    and 3 halves the resolution with stride 2; shortcuts are parameter-free, "option A"), global
    average pooling and a linear layer to ``num_classes`` logits. With ``norm="batch"`` every
    convolution is followed by BatchNorm and has no bias (so each convolution's weights are a
    scale-invariant block, see Chapter 4); ``norm="none"`` drops the BatchNorm and gives the
    convolutions biases. Depth 20 / width 16 has 269,722 parameters.

    Input ``(N, in_channels, H, W)`` (``32 x 32`` for CIFAR), output ``(N, num_classes)`` logits. Call
    ``model.eval()`` to use BatchNorm's running statistics, ``model.train()`` for batch statistics.
    """
    depth = check.integer("depth", depth, minimum=8)
    if (depth - 2) % 6:
        raise ValueError(f"depth must be 6 n + 2 (8, 14, 20, 32, 44, 56, 110, ...); got {depth}.")
    width = check.integer("width", width, minimum=1)
    num_classes = check.integer("num_classes", num_classes, minimum=1)
    in_channels = check.integer("in_channels", in_channels, minimum=1)
    norm = check.choice("norm", norm, NORMS)
    n = (depth - 2) // 6
    batch = norm == "batch"
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=not batch)]
    if batch:
        layers.append(nn.BatchNorm2d(width))
    layers.append(nn.ReLU())
    c_in = width
    for stage in range(3):
        c_out = width * 2**stage
        for i in range(n):
            layers.append(BasicBlock(c_in, c_out, 2 if (stage > 0 and i == 0) else 1, norm))
            c_in = c_out
    layers += [GlobalAvgPool(), nn.Linear(c_in, num_classes)]
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


# --------------------------------------------------------------------------- a small causal transformer (Chapter 6)

class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``i`` attends to positions ``0 .. i`` only.

    Written with plain tensor operations (no ``nn.MultiheadAttention``, no fused kernels), so that
    ``torch.func.functional_call``, ``grad`` and ``vmap`` over stacked parameters all apply.
    """

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}.")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``(N, L, d_model) -> (N, L, d_model)``."""
        n, length, d = h.shape
        q, k, v = self.qkv(h).reshape(n, length, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.n_heads)          # (N, heads, L, L)
        causal = torch.ones(length, length, dtype=torch.bool, device=h.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        mixed = scores.softmax(-1) @ v                                            # (N, heads, L, d_head)
        return self.out(mixed.transpose(1, 2).reshape(n, length, d))


class TransformerBlock(nn.Module):
    """``h + attn(norm(h))`` then ``h + mlp(norm(h))`` (pre-norm residual block; ``norm`` is the identity
    without LayerNorm)."""

    def __init__(self, d_model: int, n_heads: int, d_mlp: int, layer_norm: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model) if layer_norm else nn.Identity()
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model) if layer_norm else nn.Identity()
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.GELU(), nn.Linear(d_mlp, d_model))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``(N, L, d_model) -> (N, L, d_model)``."""
        h = h + self.attn(self.norm1(h))
        return h + self.mlp(self.norm2(h))


class CausalTransformer(nn.Module):
    """Token and learned positional embeddings, ``n_layers`` pre-norm blocks, a linear read-out to logits.

    Input ``(N, L)`` integer tokens with ``L <= context``; output ``(N, L, vocab)`` logits, where the
    logits at position ``i`` depend on tokens ``0 .. i`` only. Only parameters, no buffers: the causal
    mask is built in the forward pass.
    """

    def __init__(self, vocab: int, d_model: int, n_heads: int, n_layers: int, context: int, d_mlp: int,
                 layer_norm: bool):
        super().__init__()
        self.context = context
        self.embed = nn.Parameter(torch.randn(vocab, d_model) / math.sqrt(d_model))
        self.position = nn.Parameter(torch.randn(context, d_model) / math.sqrt(d_model))
        self.blocks = nn.ModuleList([TransformerBlock(d_model, n_heads, d_mlp, layer_norm) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(d_model) if layer_norm else nn.Identity()
        self.unembed = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(N, L)`` long tokens -> ``(N, L, vocab)`` logits."""
        length = tokens.shape[-1]
        if length > self.context:
            raise ValueError(f"sequences of length {length} exceed the context of {self.context} tokens.")
        h = self.embed[tokens] + self.position[:length]     # indexing, not nn.Embedding: vmap-friendly
        for block in self.blocks:
            h = block(h)
        return self.unembed(self.norm(h))


def causal_transformer(vocab: int = 32, d_model: int = 32, n_heads: int = 2, n_layers: int = 1, context: int = 16,
                       layer_norm: bool = False, d_mlp: int | None = None) -> CausalTransformer:
    """A small GPT-style causal transformer for next-token prediction (Chapter 6).

    ``vocab`` tokens, width ``d_model``, ``n_heads`` attention heads, ``n_layers`` residual blocks with an
    MLP of width ``d_mlp`` (default ``4 d_model``, GELU), learned positional embeddings for up to
    ``context`` positions; ``layer_norm=True`` adds a LayerNorm before the attention, before the MLP and
    before the read-out. The defaults (1 layer, ``d_model = 32``, context 16, 32 tokens) have 15,168
    parameters: ``2 V d + C d`` for the embeddings and read-out weights, ``V`` read-out biases, and per
    layer ``4 d^2 + 4 d`` (attention) plus ``2 d d_mlp + d_mlp + d`` (MLP).

    Maps ``(N, L)`` long tokens to ``(N, L, vocab)`` logits. Plain tensor operations only, so an
    ensemble (:func:`ensemble`) and ``torch.func`` transforms work on it.
    """
    vocab = check.integer("vocab", vocab, minimum=1)
    d_model = check.integer("d_model", d_model, minimum=1)
    n_heads = check.integer("n_heads", n_heads, minimum=1)
    n_layers = check.integer("n_layers", n_layers, minimum=0)
    context = check.integer("context", context, minimum=1)
    d_mlp = 4 * d_model if d_mlp is None else check.integer("d_mlp", d_mlp, minimum=1)
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}.")
    return CausalTransformer(vocab, d_model, n_heads, n_layers, context, d_mlp, bool(layer_norm))
