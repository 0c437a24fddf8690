"""What loading an export costs in memory: ``Recommender(folder)`` for a large catalogue, in a
fresh process each time, under one or more checkouts of the code (side by side, alternating).

A synthetic dataset with ``--items`` items (each user ``--length`` distinct items, every item
used) trains YouTube DNN (d = ``--dim``) for one epoch under RecBole's protocol with a sampled
evaluation (cheap at this catalogue size), and is exported once with a flat index (its item
table and its index are each about items x d x 4 bytes). Each child process imports the
serving module, notes its peak resident memory, loads the export and reports the growth of
the peak (``VmHWM``), the export's file sizes beside it. Linux only. Written to ``--out``.

    git worktree add /tmp/before <commit>
    OMP_NUM_THREADS=1 python bench/serving_load_memory.py --code /tmp/before . --out=bench/results/serving_load_memory.json

The memory does not depend on what else runs on the machine; the times printed do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# The peak from /proc's VmHWM, the process's own: getrusage's ru_maxrss keeps, across exec, the
# peak of the parent it was forked from (here the process that trained the model).
CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from recbole_umi.recommend import Recommender

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

before = peak_kib()
started = time.perf_counter()
recommender = Recommender(sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - started, "peak_before_mib": before / 1024,
                  "peak_growth_mib": (peak_kib() - before) / 1024,
                  "items": recommender.retriever.n_items, "module": __import__("recbole_umi").__file__}))
"""


def write_dataset(folder: Path, n_items: int, length: int, seed: int = 0) -> None:
    """``<folder>/big/big.inter`` and ``big.user``: ``n_items / length`` users, each with
    ``length`` items of a random permutation (every item used once), and an age and gender."""
    rng = np.random.default_rng(seed)
    items = rng.permutation(n_items) + 1
    n_users = n_items // length
    target = folder / "big"
    target.mkdir(parents=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    lines += [f"{u + 1}\t{items[u * length + t]}\t{t}" for u in range(n_users) for t in range(length)]
    (target / "big.inter").write_text("\n".join(lines) + "\n")
    users = ["user_id:token\tage:float\tgender:token"]
    users += [f"{u + 1}\t{int(rng.integers(18, 70))}\t{'MF'[int(rng.integers(0, 2))]}" for u in range(n_users)]
    (target / "big.user").write_text("\n".join(users) + "\n")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", nargs="+", default=[str(ROOT)], help="checkouts whose recbole_umi loads the export")
    parser.add_argument("--items", type=int, default=400_000)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "serving_load_memory.json"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from recbole_umi.export import export
    from recbole_umi.quick_start import run

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    write_dataset(work / "data", args.items, args.length)
    settings = {"data_path": str(work / "data"), "epochs": 1, "embedding_size": args.dim, "train_batch_size": 4096,
                "eval_protocol": "recbole", "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO",
                                                          "mode": {"valid": "uni100", "test": "uni100"}},
                "load_col": {"inter": ["user_id", "item_id", "timestamp"], "user": ["user_id", "age", "gender"]},
                "profile_fields": ["age", "gender"], "topk": [10], "metrics": ["Recall"], "valid_metric": "Recall@10",
                "checkpoint_dir": str(work / "saved"), "state": "ERROR", "show_progress": False}
    run("YoutubeDNN", "big", config_dict=settings)
    checkpoint = next(p for p in (work / "saved").glob("YoutubeDNN-*.pth") if not p.stem.endswith("-last"))
    folder = export(checkpoint, work / "export")
    sizes = {path.name: round(path.stat().st_size / 2**20, 1) for path in sorted(folder.iterdir())}
    print("export files (MiB):", sizes)
    runs = {code: [] for code in args.code}
    for _ in range(args.repeats):
        for code in args.code:  # alternating: each code's runs spread over the same time
            done = subprocess.run([sys.executable, "-c", CHILD, str(Path(code).resolve()), str(folder)],
                                  capture_output=True, text=True, check=True)
            runs[code].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(code, runs[code][-1])
    commits = {code: subprocess.run(["git", "-C", code, "describe", "--always", "--dirty"], capture_output=True,
                                    text=True).stdout.strip() for code in args.code}
    results = {"items": args.items, "dim": args.dim, "file_mib": sizes, "commits": commits, "runs": runs,
               "median_peak_growth_mib": {code: statistics.median(r["peak_growth_mib"] for r in rs)
                                          for code, rs in runs.items()}}
    print(json.dumps(results["median_peak_growth_mib"], indent=1))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
