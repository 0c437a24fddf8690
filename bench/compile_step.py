"""``compile_step`` against the eager step, side by side in one process: for each model, the
model-only training step (forward, loss, backward, Adam) on the same batches, eager and
compiled, medians over the timed steps; the compile time (the first compiled steps); and
the first step's loss and gradients of the two, which must agree to float tolerance.
Run it with the machine otherwise idle.

    python bench/compile_step.py --models=UMI,MIND --dataset=ml-1m --data_path=../shared/data \
        --train_batch_size=1024 [--steps=30] [--count_flops] [--json=FILE] [--key=value ...]

Writes one JSON object per model (and all of them to ``--json``): ``eager_ms``,
``compiled_ms``, ``speedup``, ``compile_s`` (the first two compiled steps, compiling
included), ``recompile_s`` (the first batch of another size, an epoch's last, compiles once
more), ``steps_to_pay_off`` (both compilations over the time a step saves), the loss's
relative difference and the largest difference of any gradient entry relative to the
model's largest gradient entry. A compiled run that did not compile is an error.

``--count_flops`` adds the step's arithmetic: ``step_mflop``, the floating-point
operations of the matrix products of one forward and backward pass (torch's FlopCounterMode,
on the eager step; elementwise work is not counted), ``matmul_gflops``, the rate this process
reaches on a 1024 x 1024 x 1024 float32 product at its torch threads, and the compiled and
eager steps over ``arithmetic_ms``, the time the counted products would take at that rate
(CPU only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch._dynamo.utils import counters
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi import compat  # noqa: E402

compat.apply()  # before anything imports RecBole
from recbole.utils import init_seed  # noqa: E402

from recbole_umi.config import Config, comma_list, parse_cmd_args  # noqa: E402
from recbole_umi.data import create_dataset, data_preparation  # noqa: E402
from recbole_umi.model.base import compile_step, compiled_loss  # noqa: E402
from recbole_umi.provenance import code_version  # noqa: E402
from recbole_umi.optimizer import with_fused_kernel  # noqa: E402
from recbole_umi.registry import get_model  # noqa: E402

try:
    from recbole_umi.allocator import as_configured
except ImportError:  # a checkout from before 2026-12-06 (bench/compiled_vs_commit.py), which keeps memory itself

    def as_configured(config) -> bool:
        return False


def step(model, optimizer, batch, seed: int):
    """One training step from random state ``seed``; its loss, gradients and seconds."""
    torch.manual_seed(seed)
    began = time.perf_counter()
    optimizer.zero_grad()
    loss = model.calculate_loss(batch)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    return loss.item(), grads, time.perf_counter() - began


def largest_difference(a: dict, b: dict) -> float:
    """The largest difference of any gradient entry, relative to the largest gradient entry of
    the model (a parameter whose gradient is zero in exact arithmetic, as a bias before a
    softmax, has float noise of its own size and no meaningful relative difference)."""
    scale = max(float(g.abs().max()) for g in b.values())
    return max(float((a[n] - b[n]).abs().max()) for n in b) / max(scale, 1e-12)


def full_batches(model_name: str, dataset: str, settings: dict, count: int):
    """The training split's loader and its first ``count`` full batches, on the device (the
    same batches for every way a benchmark compares; an epoch's last, shorter batch would
    compile again)."""
    config = Config(model_name, dataset, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    train_data, _, _ = data_preparation(config, create_dataset(config))
    batches = []
    for batch in train_data:
        if len(batch) == config["train_batch_size"]:
            batches.append(batch.to(config["device"]))
        if len(batches) == count:
            break
    return train_data, batches


def build(model_name: str, dataset: str, settings: dict, train_data):
    """A model in training mode and its Adam, as the plugin's pipeline and trainer build them
    (``compile_step`` for RecBole's own models too, ``fused_optimizer``, freed memory kept with
    ``keep_freed_memory``: large steps otherwise pay page faults training does not); the same
    initial weights for every call. Returns ``(model, optimizer, config)``."""
    config = Config(model_name, dataset, config_dict=settings)
    config["keep_freed_memory"] = as_configured(config)  # recorded as in effect (False where not glibc)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(model_name)(config, train_data.dataset).to(config["device"])
    compile_step(model, config)
    model.train()
    return model, trainer_adam(model, config), config


def trainer_adam(model, config):
    """Adam over ``model``'s parameters at ``config``'s learning rate, as the plugin's trainer
    builds it (``fused_optimizer``: torch's fused kernel, stepped by ``recbole_umi.optimizer``)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    return with_fused_kernel(optimizer) if config["fused_optimizer"] else optimizer


def step_flops(model, batch) -> int:
    """The floating-point operations of the matrix products (mm, bmm, addmm, attention) of
    one forward and backward pass of ``model``'s training loss on ``batch``."""
    with FlopCounterMode(display=False) as counter:
        model.calculate_loss(batch).backward()
    model.zero_grad()
    return counter.get_total_flops()


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    """The rate of a ``size``-cubed float32 matrix product at this process's torch threads
    (the median of ``repeats`` after 3 warm-up products), in GFLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    times = []
    for i in range(repeats + 3):
        began = time.perf_counter()
        torch.mm(a, b)
        if i >= 3:
            times.append(time.perf_counter() - began)
    return 2 * size**3 / statistics.median(times) / 1e9


def report(models: str, measure_one, json_path: str | None) -> list[dict]:
    """``measure_one(model_name)`` for each of the comma-separated ``models``: each result
    printed as one JSON line when it is there, all of them written to ``json_path``."""
    results = []
    for model_name in comma_list(models):
        figures = measure_one(model_name)
        print(json.dumps(figures), flush=True)
        results.append(figures)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    return results


def measure(model_name: str, dataset: str, settings: dict, steps: int, count_flops: bool = False) -> dict:
    figures = {"model": model_name}
    runs = {}
    train_data, batches = full_batches(model_name, dataset, {**settings, "compile_step": False}, steps + 2)
    if count_flops and next(iter(batches[0].interaction.values())).device.type != "cpu":  # before the timing
        raise ValueError("--count_flops times the products on this process's CPU threads: run it with use_gpu=False")
    for compiling in (False, True):
        model, optimizer, config = build(model_name, dataset, {**settings, "compile_step": compiling}, train_data)
        frames_before = counters["frames"]["ok"]
        first = [step(model, optimizer, batches[i], seed=i) for i in range(2)]  # compiles, when compiled
        timed = [step(model, optimizer, batch, seed=i)[2] for i, batch in enumerate(batches[2:], 2)]
        # a batch of another size (an epoch's last): compiled, it compiles once more
        partial = batches[0][torch.arange(len(batches[0]) // 2, device=batches[0][model.ITEM_SEQ].device)]
        if compiling and (not compiled_loss(model).ran_compiled or counters["frames"]["ok"] == frames_before):
            raise RuntimeError(f"{model_name}: the compiled run did not compile (see the warnings above)")
        runs[compiling] = {"first": first, "first_two_s": first[0][2] + first[1][2],
                              "ms": 1000 * statistics.median(timed), "partial_s": step(model, optimizer, partial, 0)[2]}
    eager, fast = runs[False], runs[True]
    saved_s = (eager["ms"] - fast["ms"]) / 1000
    figures.update({
        "train_batch_size": config["train_batch_size"],
        "torch_threads": torch.get_num_threads(),
        "fused_optimizer": bool(config["fused_optimizer"]),
        "keep_freed_memory": bool(config["keep_freed_memory"]),
        "timed_steps": steps,
        "eager_ms": round(eager["ms"], 2),
        "compiled_ms": round(fast["ms"], 2),
        "speedup": round(eager["ms"] / fast["ms"], 2),
        "compile_s": round(fast["first_two_s"] - 2 * fast["ms"] / 1000, 1),
        "recompile_s": round(fast["partial_s"] - eager["partial_s"], 1),  # the first batch of another size
        "steps_to_pay_off": round((fast["first_two_s"] + fast["partial_s"] - eager["first_two_s"] - eager["partial_s"])
                                  / saved_s) if saved_s > 0 else None,
        "loss_relative_difference": abs(fast["first"][0][0] - eager["first"][0][0]) / abs(eager["first"][0][0]),
        "largest_gradient_relative_difference": largest_difference(fast["first"][0][1], eager["first"][0][1]),
        "code": code_version(),
    })
    if count_flops:
        model, _, _ = build(model_name, dataset, {**settings, "compile_step": False}, train_data)
        torch.manual_seed(0)
        mflop = step_flops(model, batches[0]) / 1e6
        rate = matmul_gflops()
        arithmetic_ms = mflop / rate
        figures.update({"step_mflop": round(mflop, 1), "matmul_gflops": round(rate, 1),
                        "arithmetic_ms": round(arithmetic_ms, 2),
                        "compiled_vs_arithmetic": round(fast["ms"] / arithmetic_ms, 2),
                        "eager_vs_arithmetic": round(eager["ms"] / arithmetic_ms, 2)})
    return figures


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="UMI,MIND")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json", default=None)
    parser.add_argument("--count_flops", action="store_true", help="add the step's counted arithmetic")
    args, rest = parser.parse_known_args(argv)
    settings = {"state": "ERROR", "show_progress": False, **parse_cmd_args(rest)}
    return report(args.models, lambda model_name: measure(model_name, args.dataset, settings, args.steps, args.count_flops),
                  args.json)


if __name__ == "__main__":
    main()
