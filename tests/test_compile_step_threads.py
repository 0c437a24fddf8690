"""``compile_step`` on 2 threads, where the compiled step looks the items up through the
custom ops (``ops.lookup``), called from inductor's C++ wrapper: the eager loss and gradients
to float tolerance. A file of its own, so that pytest-xdist can run it beside
tests/test_compile_step.py's compilations."""

import torch

from tests.test_compile_step import loss_and_gradients


def test_the_compiled_loss_equals_the_eager_one_on_two_threads(tiny_data):
    """MIND with harder negatives: its routing, readout and item lookups."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        eager = loss_and_gradients(tiny_data, "MIND", False, harder_negatives=True)
        fast = loss_and_gradients(tiny_data, "MIND", True, harder_negatives=True)
    finally:
        torch.set_num_threads(before)
    for (eager_loss, eager_grads), (loss, grads) in zip(eager, fast):
        torch.testing.assert_close(loss, eager_loss, rtol=1e-5, atol=1e-6)
        assert grads.keys() == eager_grads.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], eager_grads[name], rtol=1e-4, atol=1e-6, msg=name)
