"""Shared fixtures. Tests always run at quick scale on the CPU, in float64 where exactness matters."""

import os

import pytest
import torch

os.environ.setdefault("NTCOURSE_SCALE", "quick")


@pytest.fixture
def gen():
    g = torch.Generator()
    g.manual_seed(1234)
    return g


@pytest.fixture
def clean_env(monkeypatch):
    """Remove the NTCOURSE_* variables so a test sees the defaults."""
    for name in ("NTCOURSE_SCALE", "NTCOURSE_SEED", "NTCOURSE_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
