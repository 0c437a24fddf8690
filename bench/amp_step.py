"""Mixed precision against float32, side by side in one process: for each model, the
model-only training step (forward, loss, backward, Adam) under RecBole's ``enable_amp``
(``torch.autocast`` as RecBole's trainer runs it: bfloat16 on a CPU) and without, both with
the loss compiled (``compile_step``, as the search trains the encoder models) or both eager
(``--compile_step=False``). The two alternate in rounds on the same batches, so a change in
the machine's load touches both; medians over the rounds' steps. Also the first step's loss
of each from the same weights and random state (the precision's own difference). Run it
with the machine otherwise idle:

    OMP_NUM_THREADS=1 python bench/amp_step.py --models=SASRec,UMISA --dataset=ml-1m \\
        --data_path=../shared/data --train_batch_size=1024 --MAX_ITEM_LIST_LENGTH=50 \\
        [--rounds=3] [--steps=5] [--compile_step=True] [--json=FILE] [--key=value ...]

Writes one JSON object per model (and all of them to ``--json``): ``fp32_ms``, ``amp_ms``,
``speedup`` and ``loss_relative_difference``. Speed only: whether the accuracy holds is
scripts/amp_ml1m.sh's question.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.compile_step import build, full_batches, report  # noqa: E402
from recbole_umi.config import parse_cmd_args  # noqa: E402


def step(model, optimizer, batch, amp: bool, device) -> tuple[float, float]:
    """One training step as RecBole's trainer takes it; its loss and seconds."""
    began = time.perf_counter()
    optimizer.zero_grad()
    with torch.autocast(device_type=device.type, enabled=amp):
        loss = model.calculate_loss(batch)
    loss.backward()
    optimizer.step()
    return loss.item(), time.perf_counter() - began


def measure(model_name: str, dataset: str, settings: dict, rounds: int, steps: int) -> dict:
    train_data, batches = full_batches(model_name, dataset, settings, steps + 2)
    ways = {amp: build(model_name, dataset, settings, train_data) for amp in (False, True)}
    config = ways[False][2]
    first = {}
    for amp, (model, optimizer, _) in ways.items():  # warm-up (the compile); the first loss from the same state
        torch.manual_seed(0)
        first[amp] = step(model, optimizer, batches[0], amp, config["device"])[0]
        step(model, optimizer, batches[1], amp, config["device"])
    seconds = {amp: [] for amp in ways}
    for _ in range(rounds):
        for amp, (model, optimizer, _) in ways.items():
            seconds[amp] += [step(model, optimizer, batch, amp, config["device"])[1] for batch in batches[2:]]
    fp32, amp = (1000 * statistics.median(seconds[way]) for way in (False, True))
    return {
        "model": model_name,
        "train_batch_size": config["train_batch_size"],
        "history_length": config["MAX_ITEM_LIST_LENGTH"],
        "torch_threads": torch.get_num_threads(),
        "compile_step": bool(config["compile_step"]),
        "amp_dtype": str(torch.get_autocast_dtype(config["device"].type)),
        "timed_steps": rounds * (len(batches) - 2),
        "fp32_ms": round(fp32, 2),
        "amp_ms": round(amp, 2),
        "speedup": round(fp32 / amp, 2),
        "loss_relative_difference": abs(first[True] - first[False]) / abs(first[False]),
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="SASRec,UMISA")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", default=None)
    args, rest = parser.parse_known_args(argv)
    settings = {"state": "ERROR", "show_progress": False, "compile_step": True, **parse_cmd_args(rest)}
    return report(args.models, lambda model_name: measure(model_name, args.dataset, settings, args.rounds, args.steps),
                  args.json)


if __name__ == "__main__":
    main()
