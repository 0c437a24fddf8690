"""Dynamic routing's contractions, timed the ways the code has had them: written as broadcast
products summed over one axis (``broadcast``, which the code once used for small T * d), as
the batched matmuls of ``towers/layers.py`` on votes built by the map (``matmul``: over
(B, K) on votes laid out B x K x T x d, over B for MIND's shared votes), and, for votes of
their own per interest made by one bias-free map (UMI's, ComiRec-DR's shared maps), through
the items and the map without building the votes (``mapped``, ``layers.MappedVotes``).

Times ``dynamic_routing`` forward and backward, the map included (3 iterations, UMI's replace
with item weights, MIND's shared votes with accumulate), every way, at MovieLens-1M's sizes
(T = 10, K = 3, d = 32) and the synthetic benchmark's (T = 50, K = 6, d = 64), batch 1024;
medians of ``--repeats`` alternating calls, written to ``--json``. Run it with the machine
otherwise idle.

    python bench/bench_routing.py [--repeats=15] [--json=bench/results/routing.json]
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

from recbole_umi.provenance import code_version  # noqa: E402
from recbole_umi.towers import layers  # noqa: E402

SIZES = {"ml-1m": (10, 3, 32), "synth": (50, 6, 64)}


def broadcast_contractions(votes):
    """The contractions as broadcast products summed over one axis (the coupling and the
    agreement laid out B x K x T, as ``layers.dynamic_routing`` has them)."""
    def contract(coupling, last):
        u = votes if last else votes.detach()  # B x T x K x d
        capsules = layers.squash((coupling.transpose(1, 2).unsqueeze(-1) * u).sum(dim=1))  # B x K x d
        return capsules, (u * capsules.unsqueeze(1)).sum(dim=-1).transpose(1, 2)  # B x K x T
    return contract


MATMULS = layers.routing_contractions


def one_call(path, history, layer, shared, mask, initial, weights, accumulate):
    k = initial.size(-1)
    if shared:
        votes = layer(history).unsqueeze(2).expand(-1, -1, k, -1)
    elif path == "mapped":
        votes = layers.MappedVotes.of_linear(history, layer, k)
    else:
        votes = layer(history).view(*history.shape[:2], k, -1)
    layers.routing_contractions = broadcast_contractions if path == "broadcast" else MATMULS
    try:
        capsules, routing = layers.dynamic_routing(votes, mask, initial, 3, item_weights=weights,
                                                   accumulate=accumulate)
    finally:
        layers.routing_contractions = MATMULS
    (capsules.sum() + routing.sum()).backward()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "routing.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    results = []
    for name, (length, k, d) in SIZES.items():
        for model, shared, accumulate in (("UMI", False, False), ("MIND", True, True)):
            history = torch.randn(args.batch, length, d, requires_grad=True)
            layer = torch.nn.Linear(d, d if shared else k * d, bias=False)
            mask = torch.ones(args.batch, length, dtype=torch.bool)
            initial = torch.randn(args.batch, length, k)
            weights = None if shared else torch.rand(args.batch, length, requires_grad=True)
            paths = ("broadcast", "matmul") if shared else ("broadcast", "matmul", "mapped")
            times = {path: [] for path in paths}
            for repeat in range(args.repeats + 2):
                for path in paths:
                    started = time.perf_counter()
                    one_call(path, history, layer, shared, mask, initial, weights, accumulate)
                    if repeat >= 2:  # two warm-up calls
                        times[path].append(time.perf_counter() - started)
            row = {"sizes": name, "T": length, "K": k, "d": d, "votes": model,
                   **{f"{path}_ms": round(1e3 * statistics.median(t), 2) for path, t in times.items()}}
            print(json.dumps(row), flush=True)
            results.append(row)
    Path(args.json).write_text(json.dumps({"code": code_version(), "threads": torch.get_num_threads(),
                                           "batch": args.batch, "rows": results},
                                          indent=2) + "\n")


if __name__ == "__main__":
    main()
