"""Before / after record for refactors that must not change behaviour (issue #26).

One short run per plugin model (and a few variants that exercise the other losses and the
faiss evaluation) on MovieLens-100K (ships inside RecBole) through ``recbole_umi.run``, with
the repository's dataset config, a fixed seed and ``epochs=3``. Writes, per run, every
validation and test metric as RecBole reports them, plus what RecBole's 4-decimal rounding
would hide: the best validation score, the interest diagnostics, a SHA-256 of the test
users' per-user metric values (their full float repr) and of the trained weights of the
best epoch (every tensor of the checkpoint's state dict, by key).

    OMP_NUM_THREADS=1 python bench/equivalence_ml100k.py --out=bench/results/equivalence_before.json
    OMP_NUM_THREADS=1 python bench/equivalence_ml100k.py --out=/tmp/after.json --compare=bench/results/equivalence_before.json

Run both sides with one torch thread (``OMP_NUM_THREADS=1``) so that they are comparable.
``--compare`` prints every difference and exits with status 1 if there is one.
``--routing_before_26`` contracts the routing of votes of their own at T * d < 1024 by
broadcast products, as the code did before issue #26 (its one change of arithmetic order;
bench/results/equivalence_after.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_routing

from recbole_umi.checkpoint import read_checkpoint  # noqa: E402
from recbole_umi.quick_start import run  # noqa: E402

# name -> (model, settings over the dataset config)
RUNS = {
    "UMI": ("UMI", {}),
    "MIND": ("MIND", {}),
    "MIND+HN": ("MIND", {"harder_negatives": True}),
    "ComiRecDR": ("ComiRecDR", {}),
    "ComiRecSA": ("ComiRecSA", {}),
    "YoutubeDNN": ("YoutubeDNN", {}),
    "ProfileDSSM": ("ProfileDSSM", {}),
    "SASRecMatching": ("SASRecMatching", {}),
    # the other objectives and readouts (full softmax, negatives shared by the batch, MIND's
    # label-aware attention with a finite power) and evaluation through a faiss index
    "UMI-full_softmax": ("UMI", {"loss_type": "full_softmax"}),
    "MIND-shared-p2": ("MIND", {"shared_negatives": True, "n_negatives": 64, "readout_power": 2.0}),
    "ComiRecDR+HN-shared": ("ComiRecDR", {"harder_negatives": True, "shared_negatives": True, "n_negatives": 64}),
    "UMI-faiss_ivf": ("UMI", {"retrieval": "faiss_ivf", "retrieval_nprobe": 4}),
}

COMMON = {"epochs": 3, "seed": 2020, "show_progress": False, "state": "ERROR", "reproducibility": True}


def _digest_values(values) -> str:
    digest = hashlib.sha256()
    for value in values:
        digest.update(repr(float(value)).encode() + b";")
    return digest.hexdigest()


def _digest_state_dict(state_dict: dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def one_run(model: str, overrides: dict, folder: Path) -> dict:
    started = time.perf_counter()
    result = run(model, "ml-100k", config_dict={**COMMON, "checkpoint_dir": str(folder), **overrides})
    best = [p for p in folder.glob(f"{model}-*.pth") if not p.stem.endswith("-last")]
    weights = _digest_state_dict(read_checkpoint(best[0])["state_dict"]) if len(best) == 1 else None
    per_user = result["test_per_user"]
    return {
        "model": model,
        "settings": overrides,
        "best_valid_score": float(result["best_valid_score"]),
        "best_valid_result": {k: float(v) for k, v in result["best_valid_result"].items()},
        "test_result": {k: float(v) for k, v in result["test_result"].items()},
        "epochs": result["epochs"],
        "best_epoch": result["best_epoch"],
        "interest_diagnostics": result["interest_diagnostics"],
        "test_per_user_sha256": {k: _digest_values(v) for k, v in per_user.items() if k != "user"},
        "best_weights_sha256": weights,
        "seconds": round(time.perf_counter() - started, 1),
    }


def use_routing_before_26() -> None:
    """The routing contraction as chosen before issue #26: broadcast products summed over one
    axis for votes of their own per interest at T * d < 1024, else today's matmuls (votes
    given by a map, ``MappedVotes``, built first, as they were then)."""
    from bench_routing import broadcast_contractions

    from recbole_umi.towers import layers

    matmuls = layers.routing_contractions

    def chosen(votes):
        if isinstance(votes, layers.MappedVotes):
            votes = torch.einsum("btd,kod->btko", votes.history, votes.maps)
        _, length, _, d = votes.shape
        if votes.stride(2) != 0 and length * d < 1024:
            return broadcast_contractions(votes)
        return matmuls(votes)

    layers.routing_contractions = chosen


def differences(before: dict, after: dict) -> list[str]:
    found = []
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            found.append(f"{name}: only in {'after' if name in after else 'before'}")
            continue
        for key in sorted(set(before[name]) | set(after[name]) - {"seconds"}):
            if key == "seconds":
                continue
            if before[name].get(key) != after[name].get(key):
                found.append(f"{name}.{key}: {before[name].get(key)!r} -> {after[name].get(key)!r}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated names of RUNS (default: all)")
    parser.add_argument("--compare", default=None, help="an earlier record to compare with")
    parser.add_argument("--routing_before_26", action="store_true",
                        help="route votes of their own at T * d < 1024 by broadcast products, as before issue #26")
    args = parser.parse_args(argv)
    if args.routing_before_26:
        use_routing_before_26()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("warning: OMP_NUM_THREADS is not 1; the record is comparable only with runs of the same thread count")
    out = Path(args.out).resolve()  # before the working directory changes
    compare = Path(args.compare).resolve() if args.compare else None
    record = {}
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # RecBole writes log/ into the working directory
        for name in args.runs.split(","):
            model, overrides = RUNS[name]
            record[name] = one_run(model, overrides, Path(scratch) / name)
            print(name, json.dumps(record[name]["test_result"]), f"{record[name]['seconds']} s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"written to {out}")
    if compare:
        before = json.loads(compare.read_text())
        found = differences({k: v for k, v in before.items() if k in record}, record)
        print("\n".join(found) if found else f"identical to {compare}")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
