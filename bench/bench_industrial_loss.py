"""The paper's industrial loss at scale: 10,240 negatives shared by a batch of 1,024 over a
catalogue of two million items, K = 6, d = 32, popularity sampling with log-Q correction.

Times, per step, medians over ``--steps`` after ``--warmup`` steps, in one run:
  * bare: the forward and backward matmuls of the score matrix alone, a (B*K x d) by
    (d x n) product and its two gradient products, on tensors already in place;
  * loss: the plugin's MultiInterestLoss forward and backward (sampling, gathering the
    candidates' vectors from the 2M x d item table, scores, harder-negative readout, log-Q
    correction, accidental-hit mask, cross entropy), with the interests given;
  * step: loss plus Adam's update of the item table and an interests tensor (dense Adam
    touches all 2M x d item weights every step).
Peak memory is the process's maximum resident set size. Run it with the machine otherwise idle.

    python bench/bench_industrial_loss.py [--items=2000000] [--batch=1024] [--negatives=10240]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.towers.losses import MultiInterestLoss, NegativeSampler  # noqa: E402


def timed(function, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--negatives", type=int, default=10_240)
    parser.add_argument("--interests", type=int, default=6)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, k, d, n = args.batch, args.interests, args.dim, args.negatives

    # bare: the score matrix's forward and backward matmuls
    left = torch.randn(b * k, d, requires_grad=True)
    right = torch.randn(d, n, requires_grad=True)

    def bare():
        scores = left @ right
        scores.backward(torch.ones_like(scores))
        left.grad = right.grad = None

    # the plugin's loss over a 2M-item table with popularity (Zipf) counts
    table = torch.nn.Embedding(args.items, d)
    counts = 1.0 / torch.arange(1, args.items + 1, dtype=torch.float64)
    counts[0] = 0.0
    loss = MultiInterestLoss(loss_type="sampled_softmax", harder_negatives=True, n_negatives=n,
                             sampler=NegativeSampler(args.items, "popularity", counts), temperature=1.0,
                             shared_negatives=True, logq_correction=True)
    interests = torch.randn(b, k, d, requires_grad=True)
    positives = torch.randint(1, args.items, (b,))

    def item_vectors(ids=None):
        return table.weight if ids is None else table(ids)

    def loss_step():
        value = loss(interests, positives, item_vectors)
        value.backward()
        table.weight.grad = interests.grad = None

    optimizer = torch.optim.Adam([table.weight, interests], lr=1e-3)

    def full_step():
        optimizer.zero_grad(set_to_none=True)
        loss(interests, positives, item_vectors).backward()
        optimizer.step()

    report = {
        "settings": vars(args),
        "bare_ms": 1000 * timed(bare, args.steps, args.warmup),
        "loss_ms": 1000 * timed(loss_step, args.steps, args.warmup),
        "step_ms": 1000 * timed(full_step, args.steps, args.warmup),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    report["loss_over_bare"] = report["loss_ms"] / report["bare_ms"]
    report["step_over_bare"] = report["step_ms"] / report["bare_ms"]
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
