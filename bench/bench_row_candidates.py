"""Per-row sampled negatives, three ways to their logits (``recbole_umi.towers.losses``): the
candidates' vectors gathered and scored by a batched matmul; the same by a broadcast product
summed over d, which compiled fuses the lookup in (``candidate_scores``); or the logits picked
from the readout of the whole item table (``scores_through_table``).

With ``n_negatives`` per row, the gathered way builds a ``B x (1 + n) x d`` tensor of
candidate vectors and, backward, scatters its gradient into the table: at ml-1m's 3,260
items and 500 negatives per row, each row's candidates are a seventh of the catalogue. This
times training steps (forward, loss, backward, Adam: ``calculate_loss``, compiled with
``--compile_step=True``; eager, the broadcast way is the matmul's) of one model on the same
batches each way, alternating rounds of ``--steps`` steps, and prints (and appends to
``--json``) the medians, their ratios to the matmul's, and the way the rules take. Run it
with the machine otherwise idle.

    python bench/bench_row_candidates.py --model=UMI --dataset=ml-1m --data_path=../shared/data \\
        --n_negatives=500 --train_batch_size=1024 [--compile_step=True] [--rounds=3] [--steps=5] [--json=FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profile_step import alternated_steps, build  # noqa: E402
from recbole_umi.allocator import keep_freed_memory  # noqa: E402
from recbole_umi.config import parse_cmd_args  # noqa: E402
from recbole_umi.files import write_atomic  # noqa: E402
from recbole_umi.provenance import code_version  # noqa: E402
from recbole_umi.towers import losses  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="UMI")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round and way")
    parser.add_argument("--json", default=None)
    args, rest = parser.parse_known_args(argv)
    keep_freed_memory()  # as training runs have it (keep_freed_memory: True, the default)
    settings = {"loss_type": "sampled_softmax", **parse_cmd_args(rest)}
    config, model, optimizer, batches = build(args.model, args.dataset, settings, n_batches=args.steps)
    k = model.interests_and_routing(batches[0])[0].size(1)
    # (TABLE_SCORES_RATIO, COMPILED_BROADCAST_MAX_CANDIDATES): the gathered vectors' scores by a
    # batched matmul or (compiled, fused with the lookup) by a broadcast product, or the table's
    # readout (eager, the broadcast way is the matmul's)
    ways = {"gathered_bmm": (math.inf, 0), "gathered_broadcast": (math.inf, math.inf), "through_table": (0, 0)}
    with mock.patch.object(torch.compiler, "is_compiling", return_value=bool(config["compile_step"])):  # as the step asks
        chosen = losses.scores_through_table(1 + config["n_negatives"], config["embedding_size"], k, model.n_items,
                                             config["harder_negatives"])
    times = alternated_steps(model, optimizer, batches, losses,
                             {way: {"TABLE_SCORES_RATIO": ratio, "COMPILED_BROADCAST_MAX_CANDIDATES": broadcast}
                              for way, (ratio, broadcast) in ways.items()}, args.rounds)
    result = {
        "model": config["model"], "dataset": config["dataset"], "batch": config["train_batch_size"],
        "d": config["embedding_size"], "K": k, "harder_negatives": config["harder_negatives"],
        "n_negatives": config["n_negatives"], "negative_sampler": config["negative_sampler"],
        "n_items": model.n_items, "compile_step": bool(config["compile_step"]), "threads": torch.get_num_threads(),
        "steps_each": len(times["through_table"]), "rule_takes_the_table": chosen,
        **{f"{way}_ms": round(1e3 * statistics.median(t), 1) for way, t in times.items()},
    }
    result["table_speedup"] = round(result["gathered_bmm_ms"] / result["through_table_ms"], 2)
    result["broadcast_speedup"] = round(result["gathered_bmm_ms"] / result["gathered_broadcast_ms"], 2)
    result["code"] = code_version()
    print(json.dumps(result))
    if args.json:
        path = Path(args.json)
        previous = json.loads(path.read_text()) if path.exists() else []
        write_atomic(path, json.dumps(previous + [result], indent=2) + "\n")  # whole: the earlier results kept
    return result


if __name__ == "__main__":
    main()
