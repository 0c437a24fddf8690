"""bench/compile_step.py's arithmetic count (``--count_flops``): the matrix products of one
forward and backward pass, checked on a step whose count is known by hand."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from compile_step import step_flops  # noqa: E402


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
    assert step_flops(model, torch.randn(4, 3)) == 48 + 48
    assert model.weight.grad is None  # the count leaves no gradient behind

