"""``compile_step``: the training loss through torch.compile gives the eager loss and
gradients to float tolerance, draws the same random numbers (negatives, dropout), and falls
back to eager, with a warning, where compiling fails; for RecBole's SASRec too (whose dropouts
it makes the plugin's, ``ops.Dropout``, and whose eager step here has them too; the rest of
what it does to RecBole's models: test_compile_recbole.py; the causal encoders' cases:
test_compile_encoders.py). One model of each kind (a compile takes 10-40 s);
bench/compile_step.py checks every model and times them."""

import logging

import pytest
import torch
from torch._dynamo.utils import counters

from recbole_umi import pipeline
from recbole_umi.config import Config
from recbole_umi.model.base import compiled_loss, fast_cpu_modules
from tests.conftest import tiny_config


def loss_and_gradients(data, model_name, compile_step, fall_back=False, **settings):
    """Two training steps' losses and gradients; checks that the loss ran compiled exactly
    when ``compile_step`` is on and no fallback is expected."""
    config = Config(model_name, "tiny", config_dict=tiny_config(data, eval_protocol="user_split", compile_step=compile_step,
                                                                **settings))
    _, train_data, _, _, model = pipeline.build(config)  # the same seed: the same initial weights
    if not compile_step:
        fast_cpu_modules(model)  # RecBole's models draw the masks compile_step gives them (the plugin's do anyway)
    model.train()
    batch = next(iter(train_data))
    frames = counters["frames"]["ok"]
    results = []
    for step in range(2):  # the first call compiles, the second runs the compiled loss
        torch.manual_seed(10 + step)  # the negatives and dropout masks drawn from here
        model.zero_grad()
        loss = model.calculate_loss(batch)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    compiled = compiled_loss(model)
    assert (compiled is not None and compiled.ran_compiled) == (compile_step and not fall_back)
    assert (counters["frames"]["ok"] > frames) == (compile_step and not fall_back)  # dynamo compiled a frame
    if compiled is not None and compiled.ran_compiled:  # the compiled loss runs in training mode only
        calls, inner = [], compiled.compiled
        compiled.compiled = lambda batch: calls.append(model.training) or inner(batch)
        for training in (False, True):
            model.train(training)
            model.calculate_loss(batch)
        assert calls == [True]
    return results


def assert_compiled_equals_eager(data, model_name, settings):
    """Two steps' losses and gradients, compiled and eager, equal to float tolerance."""
    eager = loss_and_gradients(data, model_name, False, **settings)
    fast = loss_and_gradients(data, model_name, True, **settings)
    for (eager_loss, eager_grads), (loss, grads) in zip(eager, fast):
        torch.testing.assert_close(loss, eager_loss, rtol=1e-5, atol=1e-6)
        assert grads.keys() == eager_grads.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], eager_grads[name], rtol=1e-4, atol=1e-6, msg=name)


# the causal encoders' cases: test_compile_encoders.py (a file of their own, so that the suite's
# two workers share the compiles)
@pytest.mark.compile
@pytest.mark.parametrize("model_name, settings, threads", [
    # routing, the refinement, HN, sampled negatives; on 2 threads the compiled step looks the
    # items up through the custom ops (ops.lookup), called from inductor's C++ wrapper
    ("UMI", {}, 2),
    # 30 negatives a row of 40 items at d = 16 without HN: scored through the item table
    # (losses.scores_through_table)
    ("UMI", {"n_negatives": 30, "embedding_size": 16, "harder_negatives": False}, 1),
    # the full softmax with HN: each item's best interest from the whole score tensor (losses.shared_readout)
    ("UMI", {"loss_type": "full_softmax"}, 1),
])
def test_the_compiled_loss_equals_the_eager_one(tiny_data, torch_threads, model_name, settings, threads):
    torch_threads(threads)
    assert_compiled_equals_eager(tiny_data, model_name, settings)


def test_a_failing_compile_falls_back_to_eager_with_a_warning(tiny_data, monkeypatch, caplog):
    from torch._inductor.exc import InvalidCxxCompiler

    from recbole_umi.model import base

    def no_compiler(function, cpp_wrapper=False):
        def fails(*args, **kwargs):
            raise InvalidCxxCompiler()
        return fails

    monkeypatch.setattr(base, "compiled", no_compiler)
    eager = loss_and_gradients(tiny_data, "UMI", False)
    with caplog.at_level(logging.WARNING):
        fallen_back = loss_and_gradients(tiny_data, "UMI", True, fall_back=True)
    assert "compile_step: compiling the loss failed (InvalidCxxCompiler" in caplog.text
    for (eager_loss, _), (loss, _) in zip(eager, fallen_back):
        assert loss.item() == eager_loss.item()


def test_the_compiled_loss_calls_its_kernels_from_cpp_on_the_cpu(tiny_data, monkeypatch):
    """``compile_step`` compiles with inductor's ``cpp_wrapper`` on the CPU (measured there;
    not on a GPU)."""
    from recbole_umi.model import base

    asked = []
    monkeypatch.setattr(base, "compiled", lambda function, cpp_wrapper=False: asked.append(cpp_wrapper) or function)
    config = Config("UMI", "tiny", config_dict=tiny_config(tiny_data, compile_step=True))
    _, train_data, _, _, model = pipeline.build(config)
    model.train()
    model.calculate_loss(next(iter(train_data)))
    assert asked == [True]


def test_each_model_compiles_afresh_in_one_process(tiny_data, monkeypatch):
    """Dynamo caches per code object, shared by every model of a process, and runs eager after
    ``recompile_limit`` recompilations: a search's later trials would train uncompiled. Here
    the limit is 1, so the second model compiles only if the cache was emptied for it. Dynamo's
    eager backend (its caches and limit are the backend's whatever it is; inductor's 25 s of
    compiling are not what this tests)."""
    from torch._dynamo.utils import counters

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda function, dynamic=None, options=None:
                        real_compile(function, backend="eager", dynamic=dynamic))
    # torch's own patch, not monkeypatch: pytest >= 9.2 undoes a module attribute missing from the
    # module's __dict__ (where torch's config keeps none) by deleting it, which hides the setting
    # from every later compile in the process
    limit = torch._dynamo.config.recompile_limit
    with torch._dynamo.config.patch(recompile_limit=1):
        for model_name in ("UMI", "MIND"):  # another class: the first's compiled code does not fit
            compiled_before = counters["frames"]["ok"]
            loss_and_gradients(tiny_data, model_name, True)
            assert counters["frames"]["ok"] > compiled_before, model_name
    assert torch._dynamo.config.recompile_limit == limit  # and still there for the next test
