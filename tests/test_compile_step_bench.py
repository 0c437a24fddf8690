"""bench/compile_step.py's arithmetic count (``--count_flops``): the matrix products of one
forward and backward pass, checked on a step whose count is known by hand, and counted only
on the CPU, refused before any timing."""

import sys
from pathlib import Path

import pytest
import torch
from recbole.data.interaction import Interaction

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import compile_step  # noqa: E402


class OneProduct(torch.nn.Module):
    """A loss made of one 4 x 3 by 3 x 2 product: 2 * 4 * 3 * 2 = 48 flops forward, and 48 for
    the weight's gradient backward (the input needs none)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3, 2))

    def calculate_loss(self, batch):
        return (batch @ self.weight).square().sum()


def test_step_flops_counts_the_products_forward_and_backward():
    model = OneProduct()
    assert compile_step.step_flops(model, torch.randn(4, 3)) == 48 + 48
    assert model.weight.grad is None  # the count leaves no gradient behind


def test_count_flops_refuses_batches_off_the_cpu_before_timing(monkeypatch):
    off_cpu = Interaction({"item_id": torch.zeros(4, dtype=torch.long, device="meta")})
    monkeypatch.setattr(compile_step, "full_batches", lambda *args: (None, [off_cpu] * 4))

    def timing_began(*args):
        raise AssertionError("built a model to time")

    monkeypatch.setattr(compile_step, "build", timing_began)
    with pytest.raises(ValueError, match="use_gpu=False"):
        compile_step.measure("UMI", "ml-100k", {}, steps=2, count_flops=True)
