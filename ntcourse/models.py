"""Small networks, built so that many copies can run as one vectorised ensemble.

Each builder returns a plain ``torch.nn.Sequential``. An ensemble of ``M`` independently
initialised copies is :func:`ensemble`: their parameters stacked along a new leading axis
(``torch.func.stack_module_state``) and one function that evaluates all of them with
``torch.func.vmap`` -- no Python loop over models.
"""

from __future__ import annotations

import copy
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
