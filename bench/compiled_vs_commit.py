"""The compiled training step of today's code against an earlier commit's, side by side: each
round runs one fresh process per checkout (alternating), which imports ``recbole_umi`` from
that checkout, builds the model as a trial does (``compile_step``, the trainer's fused Adam,
freed memory kept as ``recbole_umi.run`` keeps it), compiles, and times the model-only step
(zero_grad, the compiled loss, backward, Adam) on the training split's first full batches.
Prints and writes the medians over the rounds' medians, and today's speedup. Run it with the
machine otherwise idle:

    OMP_NUM_THREADS=1 python bench/compiled_vs_commit.py --baseline=../base-74068e7 --models=UMISA,SASRec \\
        --rounds=3 --json=bench/results/FILE.json -- --dataset=ml-1m --data_path=../shared/data \\
        --MAX_ITEM_LIST_LENGTH=50 --embedding_size=32

``--baseline`` is a checkout (``git worktree add ../base-74068e7 74068e7``). The settings after
``--`` go to both, ``--key=value`` as ``run_recbole_umi.py`` takes them (``--dataset``: the
dataset, default ml-1m). Each checkout compiles into an inductor cache of its own, made for
the run: a change that leaves the traced graph as it was (how inductor generates or threads
its kernels) would otherwise be timed with the other checkout's kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worker(root: str, model_name: str, steps: int, rest: list[str]) -> dict:
    """Times ``steps`` compiled steps of ``model_name`` with the code of checkout ``root``."""
    sys.path.insert(0, root)
    from recbole_umi import compat

    compat.apply()
    import torch
    from recbole.utils import init_seed

    from recbole_umi.allocator import keep_freed_memory
    from recbole_umi.config import Config, parse_cmd_args
    from recbole_umi.model.base import compile_step
    from recbole_umi.provenance import code_version
    from recbole_umi.registry import get_model

    import recbole_umi

    if Path(recbole_umi.__file__).resolve().parent.parent != Path(root).resolve():
        raise RuntimeError(f"imported {recbole_umi.__file__}, not the checkout {root}")
    sys.path.insert(1, str(ROOT / "bench"))  # after the checkout: recbole_umi is already the checkout's
    from compile_step import full_batches  # today's helper, on the checkout's modules

    keep_freed_memory()
    settings = {"state": "ERROR", "show_progress": False, **parse_cmd_args(rest), "compile_step": True}
    dataset = settings.pop("dataset", "ml-1m")
    train_data, batches = full_batches(model_name, dataset, settings, steps + 2)
    config = Config(model_name, dataset, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(model_name)(config, train_data.dataset)
    compile_step(model, config)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"],
                                 fused=True if config["fused_optimizer"] else None)
    if config["fused_optimizer"]:
        try:  # the trainer's Adam from 2026-12-05 (recbole_umi.optimizer); earlier, torch's fused Adam above
            from recbole_umi.optimizer import with_fused_kernel
            optimizer = with_fused_kernel(torch.optim.Adam(model.parameters(), lr=config["learning_rate"]))
        except ImportError:
            pass
    times = []
    for i, batch in enumerate(batches):
        began = time.perf_counter()
        optimizer.zero_grad()
        model.calculate_loss(batch).backward()
        optimizer.step()
        if i >= 2:  # the first two compile
            times.append(time.perf_counter() - began)
    return {"model": model_name, "ms": round(1000 * statistics.median(times), 2), "steps": len(times),
            "torch_threads": torch.get_num_threads(), "code": code_version()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="the earlier commit's checkout")
    parser.add_argument("--models", default="UMISA")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # a checkout: time one model there
    args, rest = parser.parse_known_args(argv)
    rest = [a for a in rest if a != "--"]
    if args.worker:
        print(json.dumps(worker(args.worker, args.models, args.steps, rest)))
        return {}
    if not args.baseline:
        parser.error("--baseline is required")
    checkouts = {"baseline": str(Path(args.baseline).resolve()), "today": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="compiled-vs-commit-") as caches:
        results = compare(checkouts, args, rest, {label: str(Path(caches) / label) for label in checkouts})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


def compare(checkouts: dict, args, rest: list[str], caches: dict) -> dict:
    """Every model of ``args.models`` timed in ``args.rounds`` rounds of one fresh process per
    checkout (alternating), each compiling into its inductor cache of ``caches``."""
    results = {}
    for model_name in args.models.split(","):
        runs = {label: [] for label in checkouts}
        for _ in range(args.rounds):
            for label, root in checkouts.items():
                out = subprocess.run([sys.executable, __file__, f"--worker={root}", f"--models={model_name}",
                                      f"--steps={args.steps}", *rest], capture_output=True, text=True, check=True,
                                     env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": caches[label]})
                runs[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
        medians = {label: statistics.median(run["ms"] for run in runs[label]) for label in checkouts}
        results[model_name] = {
            "settings": rest, "rounds": args.rounds, "steps": args.steps,
            "baseline_ms": medians["baseline"], "today_ms": medians["today"],
            "speedup": round(medians["baseline"] / medians["today"], 3),
            "each_round_ms": {label: [run["ms"] for run in runs[label]] for label in checkouts},
            "torch_threads": runs["today"][0]["torch_threads"],
            "code": {label: runs[label][0]["code"] for label in checkouts},
        }
        print(model_name, json.dumps({k: results[model_name][k] for k in ("baseline_ms", "today_ms", "speedup",
                                                                          "each_round_ms")}), flush=True)
    return results


if __name__ == "__main__":
    main()
