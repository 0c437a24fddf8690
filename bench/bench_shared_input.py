"""A user's profile beside each history item: concatenated, or computed once per user.

UMI's UGANet (Eq 2) reads ``[e_i ; e_u]`` for each of the T history items, and its Eq 7
MLP and MIND's interest MLP read the profile beside each of the K interests. Built as a
concatenation, the profile's share of the first layer is computed T (or K) times per user;
``MLP.forward_shared`` computes it once. This times training steps (forward, loss,
backward, Adam) of the same model on the same batches both ways, alternating rounds of
``--steps`` steps, and prints and writes the medians and their ratio
(``bench/results/shared_input_<dataset>_<model>.json``). Run it with the machine otherwise idle.

    python bench/bench_shared_input.py --model=UMI --dataset=synth --data_path=/tmp/recbole-umi-synth \\
        --n_interests=6 [--rounds=3] [--steps=5]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profile_step import alternated_medians, build  # noqa: E402
from recbole_umi.config import parse_cmd_args  # noqa: E402
from recbole_umi.towers.layers import MLP  # noqa: E402


def concatenated(self, rows, shared, shared_first=False):
    """The code before ``forward_shared``: the MLP of the built concatenation."""
    expanded = shared.unsqueeze(-2).expand(*rows.shape[:-1], -1)
    return self(torch.cat([expanded, rows] if shared_first else [rows, expanded], dim=-1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="UMI")
    parser.add_argument("--dataset", default="synth")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round and way")
    args, rest = parser.parse_known_args(argv)
    config, model, optimizer, batches = build(args.model, args.dataset, parse_cmd_args(rest), n_batches=args.steps)
    medians = alternated_medians(model, optimizer, batches, MLP, "forward_shared",
                                 {"concatenated": concatenated, "shared": MLP.forward_shared}, args.rounds)
    result = {
        "model": config["model"], "dataset": config["dataset"], "batch": config["train_batch_size"],
        "T": config["MAX_ITEM_LIST_LENGTH"], "K": config["n_interests"], "threads": torch.get_num_threads(),
        "steps_each": args.rounds * len(batches),
        **{f"{way}_ms": ms for way, ms in medians.items()},
    }
    result["speedup"] = round(result["concatenated_ms"] / result["shared_ms"], 2)
    print(json.dumps(result))
    out = Path(__file__).parent / "results" / f"shared_input_{config['dataset']}_{config['model']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
