"""The small operations whose form the code chooses by measurement, each timed both ways,
forward and backward, eager and (where the code chooses by it) compiled:

- ``softmax``: the routing's softmax over K = 3 interests, with K the innermost dimension
  (``B x T x K``) or not (``B x K x T``, as ``layers.dynamic_routing`` lays the logits out);
- ``lookup``: history rows from the item table, ``nn.Embedding`` against the custom ops
  ``ops.lookup`` calls eager (index_select, and index_add_ for the gradient), eager and
  compiled;
- ``mapped_lookup``: a bias-free map of looked-up rows (MIND's shared map, UMI's UGANet's
  first layer), applied after the lookup or to the table's rows first (``ops.mapped_lookup``),
  eager and compiled;
- ``relu``: a compiled rectifier between two layers, ``torch.relu`` against ``ops.ReLU``;
- ``candidate_scores``: ``B x K x d`` interests against ``B x C x d`` candidates, a
  broadcast product summed over d against a batched matmul, eager and compiled, for
  (K, C) of 1, 3 or 6 interests and 5 or 50 negatives;
- ``routing_contractions``: the routing's sums over the history (``layers._pool`` and
  ``layers._agree``, forced one way or the other by ``broadcast_sums``) as batched matmuls or
  broadcast products, compiled, inside a whole ``dynamic_routing`` (UMI's mapped votes and MIND's
  shared ones, T = 10 and 50);
- ``linear``: a linear map's product, forward (``x W^T + b``) and its input's gradient
  (``g W``), by torch's BLAS (``F.linear``) against oneDNN (what ``ops.Linear`` calls where
  the product widens or keeps the width), for the encoders' rows (batch 128 or 1024 x T = 10
  or 50) and maps (d -> d, d -> 4d or 8d, and back; d = 32, 64, 128);
- ``gelu``: a compiled feed-forward layer's activation (``B x T x 4d``, then the map back to
  d), forward and backward: inductor's erf (RecBole's formula) against ``ops.gelu``;
- ``tanh``: a compiled ``tanh(x + c)`` (the extractor's hidden layer, ``B x T x 4d``),
  forward and backward: ``torch.tanh`` against ``ops.Tanh``;
- ``dropout_draws``: a dropout mask of ``B x heads x T x T`` entries (the attention's), as
  Bernoulli draws, float32 uniform variates against ``p``, and the 16-bit draws of
  ``ops.Dropout``.

Medians of ``--repeats`` calls after warm-up, in microseconds, written to ``--json``. Batch
1024, d = 32, ml-1m's 3,261 items and T = 10 unless said. Run it with the machine otherwise
idle (torch's threads: OMP_NUM_THREADS).

    python bench/bench_small_ops.py [--repeats=100] [--json=bench/results/small_ops.json] [--only=relu,...]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.provenance import code_version  # noqa: E402
from recbole_umi.towers import layers, ops  # noqa: E402

BATCH, LENGTH, D, ITEMS = 1024, 10, 32, 3261


def median_us(call, repeats: int) -> float:
    for _ in range(5):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return round(1e6 * statistics.median(times), 1)


def backward_of(function, *inputs, parameters=()):
    """A call of ``function(*inputs)`` and the backward of its output's sum (the gradients of
    the inputs and of ``parameters`` cleared first)."""
    def call():
        for tensor in (*inputs, *parameters):
            tensor.grad = None
        function(*inputs).sum().backward()
    return call


def compiled(function):
    torch._dynamo.reset()
    return torch.compile(function)


def softmax_rows(repeats: int) -> list[dict]:
    logits = torch.randn(BATCH, LENGTH, 3, requires_grad=True)
    innermost = backward_of(lambda x: torch.softmax(x, dim=-1), logits)
    laid_out = backward_of(lambda x: torch.softmax(x.transpose(1, 2), dim=1), logits)
    return [{"op": "softmax over K = 3", "K innermost": median_us(innermost, repeats),
             "K not innermost (B x K x T)": median_us(laid_out, repeats)}]


def lookup_rows(repeats: int) -> list[dict]:
    """``nn.Embedding`` against the custom ops of ``ops.lookup``, each eager and compiled
    (``ops.lookup`` calls the custom ops eager, and compiled on 2 or more threads)."""
    table = torch.nn.Embedding(ITEMS, D, padding_idx=0)
    ids = torch.randint(0, ITEMS, (BATCH, LENGTH))
    rows = []
    for mode, wrap in (("eager", lambda f: f), ("compiled", compiled)):
        embedding = wrap(lambda i: table(i).square())
        custom_ops = wrap(lambda i: ops._lookup(table.weight, i, 0).square())
        rows.append({"op": f"item rows, {mode}",
                     "nn.Embedding": median_us(backward_of(embedding, ids, parameters=[table.weight]), repeats),
                     "index_select/index_add_ custom ops": median_us(
                         backward_of(custom_ops, ids, parameters=[table.weight]), repeats)})
    return rows


def mapped_lookup_rows(repeats: int) -> list[dict]:
    """A bias-free map of looked-up rows (MIND's shared map, 32 wide; UMI's UGANet's first
    layer, 8), mapped after the lookup against ``ops.mapped_lookup`` (the table's rows mapped
    first), each eager and compiled."""
    table = torch.nn.Embedding(ITEMS, D, padding_idx=0)
    ids = torch.randint(0, ITEMS, (BATCH, LENGTH))
    rows = []
    for width in (D, 8):
        weight = torch.randn(width, D, requires_grad=True)
        for mode, wrap in (("eager", lambda f: f), ("compiled", compiled)):
            after = wrap(lambda i: torch.nn.functional.linear(ops.lookup(table, i), weight).square())
            first = wrap(lambda i: ops.mapped_lookup(table, i, weight).square())
            rows.append({"op": f"rows mapped to {width}, {mode}",
                         "map after the lookup": median_us(backward_of(after, ids, parameters=[table.weight, weight]),
                                                           repeats),
                         "table mapped first": median_us(backward_of(first, ids, parameters=[table.weight, weight]),
                                                         repeats)})
    return rows


def relu_rows(repeats: int) -> list[dict]:
    """A compiled rectifier between two layers (its backward needs where it was positive), as
    UMI's UGANet (B x T x 8, then a map to 1) and refinement (B*K x 32, then to 32) have it:
    ``torch.relu`` against ``ops.ReLU``."""
    rows = []
    for shape, width in (((BATCH, LENGTH, 8), 1), ((BATCH * 3, D), D)):
        hidden = torch.randn(*shape, requires_grad=True)
        weight = torch.randn(width, shape[-1], requires_grad=True)
        row = {"op": f"relu of {'x'.join(map(str, shape))}, compiled"}
        for name, act in (("torch.relu", torch.relu), ("ops.ReLU", ops.ReLU())):
            layer = compiled(lambda h, act=act: torch.nn.functional.linear(act(h), weight))
            row[name] = median_us(backward_of(layer, hidden, parameters=[weight]), repeats)
        rows.append(row)
    return rows


def candidate_rows(repeats: int) -> list[dict]:
    rows = []
    for k, c in ((1, 6), (1, 51), (3, 6), (3, 51), (6, 6), (6, 51)):
        interests = torch.randn(BATCH, k, D, requires_grad=True)
        candidates = torch.randn(BATCH, c, D, requires_grad=True)
        broadcast = lambda i, x: (i.unsqueeze(2) * x.unsqueeze(1)).sum(dim=-1).amax(dim=1)  # noqa: E731
        matmul = lambda i, x: torch.bmm(i, x.transpose(1, 2)).amax(dim=1)  # noqa: E731
        for mode, wrap in (("eager", lambda f: f), ("compiled", compiled)):
            rows.append({"op": f"candidate scores K={k} C={c}, {mode}",
                         "broadcast": median_us(backward_of(wrap(broadcast), interests, candidates), repeats),
                         "bmm": median_us(backward_of(wrap(matmul), interests, candidates), repeats)})
    return rows


def routing_rows(repeats: int) -> list[dict]:
    chosen = layers.routing_contractions
    rows = []
    for length in (10, 50):
        history = torch.randn(BATCH, length, D, requires_grad=True)
        mask = torch.ones(BATCH, length, dtype=torch.bool)
        initial = torch.randn(BATCH, length, 3)
        umi_map, mind_map = torch.nn.Linear(D, 3 * D, bias=False), torch.nn.Linear(D, D, bias=False)
        for votes_name, votes_of, accumulate in (
                ("mapped (UMI)", lambda e: layers.MappedVotes.of_linear(e, umi_map, 3), False),
                ("shared (MIND)", lambda e: mind_map(e).unsqueeze(2).expand(-1, -1, 3, -1), True)):
            row = {"op": f"dynamic_routing compiled, {votes_name} votes, T={length}"}
            for name in ("bmm", "broadcast"):
                layers.routing_contractions = functools.partial(chosen, broadcast_sums=name == "broadcast")
                try:
                    routed = compiled(lambda e: layers.dynamic_routing(votes_of(e), mask, initial, 3,
                                                                       accumulate=accumulate)[0])
                    row[name] = median_us(backward_of(routed, history), repeats)
                finally:
                    layers.routing_contractions = chosen
            rows.append(row)
    return rows


def linear_rows(repeats: int) -> list[dict]:
    rows = []
    for rows_, shape in ((128 * 10, "128 x 10"), (128 * 50, "128 x 50"), (BATCH * 10, "1024 x 10"),
                         (BATCH * 50, "1024 x 50")):
        for d_in, d_out in ((32, 32), (32, 128), (128, 32), (32, 256), (256, 32), (64, 64), (64, 256), (256, 64),
                            (128, 128)):
            x, weight, bias = torch.randn(rows_, d_in), torch.randn(d_out, d_in), torch.randn(d_out)
            grad, transposed = torch.randn(rows_, d_out), weight.t().contiguous()
            onednn = torch.ops.mkldnn._linear_pointwise
            times = max(5, repeats * 1280 // rows_)  # fewer repeats of the larger products
            rows.append({"op": f"linear {d_in} -> {d_out} of {shape} rows",
                         "forward F.linear": median_us(lambda: F.linear(x, weight, bias), times),
                         "forward oneDNN": median_us(lambda: onednn(x, weight, bias, "none", [], ""), times),
                         "input gradient mm": median_us(lambda: torch.mm(grad, weight), times),
                         "input gradient oneDNN": median_us(lambda: onednn(grad, transposed, None, "none", [], ""),
                                                            times)})
    return rows


def gelu_rows(repeats: int) -> list[dict]:
    rows = []
    for length, width in ((10, 128), (50, 128), (50, 256)):
        hidden = torch.randn(BATCH, length, width, requires_grad=True)
        weight = torch.randn(D, width, requires_grad=True)
        row = {"op": f"gelu of {BATCH}x{length}x{width} then a map to {D}, compiled"}
        for name, act in (("inductor's erf", lambda x: x * 0.5 * (1.0 + torch.erf(x / 2.0**0.5))), ("ops.gelu", ops.gelu)):
            layer = compiled(lambda h, act=act: F.linear(act(h), weight))
            row[name] = median_us(backward_of(layer, hidden, parameters=[weight]), max(5, repeats // 10))
        rows.append(row)
    return rows


def tanh_rows(repeats: int) -> list[dict]:
    rows = []
    for length in (10, 50):
        hidden = torch.randn(BATCH, length, 4 * D, requires_grad=True)
        context = torch.randn(BATCH, 1, 4 * D)
        row = {"op": f"tanh of {BATCH}x{length}x{4 * D} plus a context, compiled"}
        for name, act in (("torch.tanh", torch.tanh), ("ops.Tanh", ops.Tanh())):
            layer = compiled(lambda h, act=act: act(h + context))
            row[name] = median_us(backward_of(layer, hidden), max(5, repeats // 10))
        rows.append(row)
    return rows


def dropout_draw_rows(repeats: int) -> list[dict]:
    rows = []
    for length in (10, 50):
        scores = torch.randn(BATCH, 2, length, length)
        n = scores.numel()
        row = {"op": f"dropout mask of {BATCH}x2x{length}x{length} entries, p = 0.5"}
        row["bernoulli_"] = median_us(lambda: torch.empty_like(scores).bernoulli_(0.5), max(5, repeats // 10))
        row["float32 uniforms"] = median_us(lambda: torch.rand_like(scores) >= 0.5, max(5, repeats // 10))
        row["16-bit draws"] = median_us(lambda: ops._dropout_draws(scores).view(torch.int16)[:n] >= ops._threshold(0.5),
                                        max(5, repeats // 10))
        rows.append(row)
    return rows


MEASURES = {"softmax": softmax_rows, "lookup": lookup_rows, "mapped_lookup": mapped_lookup_rows, "relu": relu_rows,
            "candidate_scores": candidate_rows, "routing_contractions": routing_rows, "linear": linear_rows,
            "gelu": gelu_rows, "tanh": tanh_rows, "dropout_draws": dropout_draw_rows}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "small_ops.json"))
    parser.add_argument("--only", default=None, help="comma-separated: " + ",".join(MEASURES))
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(MEASURES)
    unknown = set(chosen) - set(MEASURES)
    if unknown:
        parser.error(f"--only: unknown {sorted(unknown)}; known: {', '.join(MEASURES)}")
    torch.manual_seed(0)
    rows = []
    for name, measure in MEASURES.items():
        if name not in chosen:
            continue
        for row in measure(args.repeats):
            print(json.dumps(row), flush=True)
            rows.append(row)
    record = {"code": code_version(), "threads": torch.get_num_threads(), "rows": rows}
    Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
