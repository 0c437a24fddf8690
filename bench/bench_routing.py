"""Dynamic routing's two contractions: the batched matmuls of ``towers/layers.py``
(``routing_contractions``: over (B, K) on votes laid out B x K x T x d, over B for MIND's
shared votes) against the same contractions written as broadcast products summed over one
axis (``broadcast_contractions`` below, which the code once used for small T * d).

Times ``dynamic_routing`` forward and backward (3 iterations, UMI's replace and MIND's
shared votes with accumulate), both ways, at MovieLens-1M's sizes (T = 10, K = 3, d = 32)
and the synthetic benchmark's (T = 50, K = 6, d = 64), batch 1024; medians of ``--repeats``
alternating calls, written to ``bench/results/routing.json``. Run it with the machine otherwise idle.

    python bench/bench_routing.py [--repeats=15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.towers import layers  # noqa: E402

SIZES = {"ml-1m": (10, 3, 32), "synth": (50, 6, 64)}


def broadcast_contractions(votes):
    """The contractions as broadcast products summed over one axis."""
    def contract(coupling, last):
        u = votes if last else votes.detach()
        capsules = layers.squash((coupling.unsqueeze(-1) * u).sum(dim=1))  # B x K x d
        return capsules, (u * capsules.unsqueeze(1)).sum(dim=-1)  # B x T x K
    return contract


MATMULS = layers.routing_contractions


def one_call(votes_source, shared, mask, initial, weights, accumulate):
    k = initial.size(-1)
    votes = votes_source.unsqueeze(2).expand(-1, -1, k, -1) if shared else votes_source * 1.0
    capsules, routing = layers.dynamic_routing(votes, mask, initial, 3, item_weights=weights, accumulate=accumulate)
    (capsules.sum() + routing.sum()).backward()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    results = []
    for name, (length, k, d) in SIZES.items():
        for model, shared, accumulate in (("UMI", False, False), ("MIND", True, True)):
            source = torch.randn(args.batch, length, *(() if shared else (k,)), d, requires_grad=True)
            mask = torch.ones(args.batch, length, dtype=torch.bool)
            initial = torch.randn(args.batch, length, k)
            weights = None if shared else torch.rand(args.batch, length, requires_grad=True)
            times = {"broadcast": [], "matmul": []}
            for repeat in range(args.repeats + 2):
                for path, contractions in (("broadcast", broadcast_contractions), ("matmul", MATMULS)):
                    layers.routing_contractions = contractions
                    started = time.perf_counter()
                    one_call(source, shared, mask, initial, weights, accumulate)
                    if repeat >= 2:  # two warm-up calls
                        times[path].append(time.perf_counter() - started)
            row = {"sizes": name, "T": length, "K": k, "d": d, "votes": model,
                   **{f"{path}_ms": round(1e3 * statistics.median(t), 2) for path, t in times.items()}}
            row["matmul_speedup"] = round(row["broadcast_ms"] / row["matmul_ms"], 2)
            print(json.dumps(row))
            results.append(row)
    out = Path(__file__).parent / "results" / "routing.json"
    out.write_text(json.dumps({"threads": torch.get_num_threads(), "batch": args.batch, "rows": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
