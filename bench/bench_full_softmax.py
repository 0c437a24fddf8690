"""Full softmax: the whole ``B x K x n_items`` score tensor, or the shared readout.

Under ``loss_type: full_softmax`` every item is a candidate of every row. Built as one
``B x K x n_items`` score tensor, the readout over the K interests (HN's max, its zero-filled
gradient and scatter; or the gather of the positive's interest) costs more than the
products. :class:`recbole_umi.towers.losses.MultiInterestLoss` now treats the catalogue as
candidates shared by the batch (``shared_readout``: HN through ``BestInterestScores``, block
by block; without HN one ``B x d`` readout vector per row). This times training steps
(forward, loss, backward, Adam) of the same model on the same batches both ways,
alternating rounds of ``--steps`` steps, and prints and writes the medians and their ratio
(``bench/results/full_softmax_<dataset>_<model>[_hn]_<threads>t.json``). Run it with the machine
otherwise idle.

With ``--compile_step=True`` and harder negatives it compares instead the two ways of the
compiled step (``calculate_loss``): each item's best interest block by block
(``BestInterestScores``) or from the whole score tensor (``DENSE_BEST_MAX_SCORES``, the
compiled default at ml-1m's sizes), into ``..._compiled.json``.

    python bench/bench_full_softmax.py --model=UMI --dataset=ml-1m --data_path=../shared/data \\
        --config_files=results/tuning/ml-1m/UMI/best.yaml --train_batch_size=1024 [--rounds=3] [--steps=5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profile_step import alternated_medians, alternated_steps, build  # noqa: E402
from recbole_umi.allocator import keep_freed_memory  # noqa: E402
from recbole_umi.config import parse_cmd_args  # noqa: E402
from recbole_umi.provenance import code_version  # noqa: E402
from recbole_umi.towers.layers import mask_logits  # noqa: E402
from recbole_umi.towers import losses  # noqa: E402
from recbole_umi.towers.losses import MultiInterestLoss, readout_logits  # noqa: E402


def whole_tensor(self, interests, positives, item_vectors):
    """The full softmax before the shared readout: every score of every interest."""
    scores = torch.matmul(interests, item_vectors().t())  # B x K x n_items
    logits = readout_logits(scores, positives, self.harder_negatives, self.readout_power)
    not_padding = torch.arange(logits.size(1), device=logits.device) != 0
    return F.cross_entropy(mask_logits(logits / self.temperature, not_padding), positives)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="UMI")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round and way")
    args, rest = parser.parse_known_args(argv)
    settings = {**parse_cmd_args(rest), "loss_type": "full_softmax"}
    config, model, optimizer, batches = build(args.model, args.dataset, settings, n_batches=args.steps)
    if config["compile_step"]:
        return compiled_ways(config, model, optimizer, batches, args.rounds)
    medians = alternated_medians(model, optimizer, batches, MultiInterestLoss, "forward",
                                 {"whole_tensor": whole_tensor, "shared_readout": MultiInterestLoss.forward}, args.rounds)
    result = {
        "model": config["model"], "dataset": config["dataset"], "batch": config["train_batch_size"],
        "K": config["n_interests"], "harder_negatives": config["harder_negatives"],
        "n_items": model.n_items, "threads": torch.get_num_threads(), "steps_each": args.rounds * len(batches),
        **{f"{way}_ms": ms for way, ms in medians.items()},
    }
    result["speedup"] = round(result["whole_tensor_ms"] / result["shared_readout_ms"], 2)
    print(json.dumps(result))
    name = f"full_softmax_{config['dataset']}_{config['model']}{'_hn' if result['harder_negatives'] else ''}_{result['threads']}t"
    out = Path(__file__).parent / "results" / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def compiled_ways(config, model, optimizer, batches, rounds: int) -> dict:
    """The compiled step (``calculate_loss``, Adam) with HN's best interests block by block
    and from the whole score tensor, alternated; medians in milliseconds."""
    if not config["harder_negatives"]:
        raise SystemExit("--compile_step=True compares the two ways of harder negatives: add --harder_negatives=True")
    keep_freed_memory()  # as training runs have it
    times = alternated_steps(model, optimizer, batches, losses,
                             {"blocked": {"DENSE_BEST_MAX_SCORES": 0},
                              "whole_tensor": {"DENSE_BEST_MAX_SCORES": losses.DENSE_BEST_MAX_SCORES}}, rounds)
    result = {
        "model": config["model"], "dataset": config["dataset"], "batch": config["train_batch_size"],
        "d": config["embedding_size"], "K": config["n_interests"], "harder_negatives": True, "compile_step": True,
        "n_items": model.n_items, "threads": torch.get_num_threads(), "steps_each": len(times["blocked"]),
        **{f"{way}_ms": round(1e3 * statistics.median(t), 1) for way, t in times.items()},
        "code": code_version(),
    }
    result["speedup"] = round(result["blocked_ms"] / result["whole_tensor_ms"], 2)
    print(json.dumps(result))
    name = f"full_softmax_{config['dataset']}_{config['model']}_hn_d{result['d']}_k{result['K']}_{result['threads']}t_compiled"
    (Path(__file__).parent / "results" / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
