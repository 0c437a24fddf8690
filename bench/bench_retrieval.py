"""Top-N retrieval at catalogue scale: full scoring against faiss exact, IVF and HNSW.

A synthetic catalogue of ``--items`` item vectors (d = ``--dim``) and ``--users`` users with
K = ``--k`` interests each. Trained item embeddings are clustered (items of a genre, a
category, a taste lie together) and their norms vary (popular items score higher), so the
items are drawn around ``--clusters`` Gaussian centres with log-normal norms, and each
interest lies near a random item's centre (``--spread`` is the noise relative to the
centres). Uniform random vectors, with no structure at all, are the worst case of every
approximate index and unlike any trained embedding.

For each method: build time, index size (faiss's serialised bytes: the memory it takes),
per-user search time (batched: the whole batch's time over its users; and single-user: the
median of one-user searches), and recall@N of its merged top N against the exact top N.
Full scoring is ``max_k`` of a matmul over all items and a top-N, in torch, in batches of
``--full_batch`` users; it is timed on the first ``--full_users`` users. Results are written
to ``--out`` (JSON) as each method finishes.

    python bench/bench_retrieval.py --items=1000000 --users=10000 --out=bench/results/retrieval_1m.json

Run it with the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.retrieval import IndexSpec, InterestRetriever  # noqa: E402


def synthetic(n_items, n_users, dim, k, clusters, spread, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32) / np.sqrt(dim)
    assignment = rng.integers(0, clusters, size=n_items)
    items = centres[assignment] + spread * rng.normal(size=(n_items, dim)).astype(np.float32) / np.sqrt(dim)
    items = (items * rng.lognormal(0.0, 0.25, size=(n_items, 1))).astype(np.float32)
    items = np.vstack([np.zeros((1, dim), np.float32), items])  # row 0: RecBole's padding item
    picked = assignment[rng.integers(0, n_items, size=(n_users, k))]
    interests = centres[picked] + spread * rng.normal(size=(n_users, k, dim)).astype(np.float32) / np.sqrt(dim)
    return items, interests.astype(np.float32)


def full_scoring(items: torch.Tensor, interests: torch.Tensor, n: int, batch: int) -> np.ndarray:
    tops = []
    for start in range(0, len(interests), batch):
        scores = torch.matmul(interests[start : start + batch], items.t()).max(dim=1).values
        scores[:, 0] = -torch.inf
        tops.append(scores.topk(n, dim=1).indices)
    return torch.cat(tops).numpy()


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    hits = [len(set(f[f >= 0]) & set(e)) for f, e in zip(found, exact)]
    return float(np.sum(hits) / exact.size)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--n", type=int, default=50, help="top N")
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--full_users", type=int, default=1000, help="users timed with full scoring")
    parser.add_argument("--full_batch", type=int, default=64)
    parser.add_argument("--single", type=int, default=200, help="one-user searches timed per method")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ivf", default="1024:8,1024:16,1024:32,4096:32,4096:64", help="nlist:nprobe,...")
    parser.add_argument("--hnsw", default="32:64,32:128,32:256", help="M:efSearch,... (efConstruction 80)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/retrieval.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"settings": vars(args), "methods": []}

    def save(entry):
        report["methods"].append(entry)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(entry), flush=True)

    items, interests = synthetic(args.items, args.users, args.dim, args.k, args.clusters, args.spread, args.seed)
    items_t, interests_t = torch.from_numpy(items), torch.from_numpy(interests)

    started = time.perf_counter()
    exact_full = full_scoring(items_t, interests_t[: args.full_users], args.n, args.full_batch)
    seconds = time.perf_counter() - started
    single = []
    for user in range(min(args.single, args.full_users)):
        started = time.perf_counter()
        full_scoring(items_t, interests_t[user : user + 1], args.n, 1)
        single.append(time.perf_counter() - started)
    save({"method": "full scoring (torch)", "build_s": 0.0, "index_mb": items.nbytes / 2**20,
          "ms_per_user_batched": 1000 * seconds / args.full_users, "ms_per_user_single": 1000 * statistics.median(single),
          "recall": 1.0, "users_timed": args.full_users})

    def searched(name, retriever, build_s):
        size = faiss.serialize_index(retriever.index).nbytes / 2**20
        started = time.perf_counter()
        _, found = retriever.search(interests, args.n)
        seconds = time.perf_counter() - started
        single = []
        for user in range(args.single):
            started = time.perf_counter()
            retriever.search(interests[user : user + 1], args.n)
            single.append(time.perf_counter() - started)
        return found, {"method": name, "build_s": build_s, "index_mb": size,
                       "ms_per_user_batched": 1000 * seconds / args.users,
                       "ms_per_user_single": 1000 * statistics.median(single), "users_timed": args.users}

    def built(spec):
        started = time.perf_counter()
        retriever = InterestRetriever(items, spec)
        return retriever, time.perf_counter() - started

    retriever, build_s = built(IndexSpec("exact"))
    exact, entry = searched("faiss exact (IndexFlatIP)", retriever, build_s)
    entry["recall"] = recall(exact[: args.full_users], exact_full)  # against full scoring (ties aside)
    save(entry)
    by_nlist: dict[int, list[int]] = {}
    for pair in filter(None, args.ivf.split(",")):
        nlist, nprobe = map(int, pair.split(":"))
        by_nlist.setdefault(nlist, []).append(nprobe)
    for nlist, nprobes in by_nlist.items():
        retriever, build_s = built(IndexSpec("ivf", nlist=nlist))
        for nprobe in nprobes:
            retriever.index.nprobe = nprobe
            found, entry = searched(f"faiss IVF nlist={nlist} nprobe={nprobe}", retriever, build_s)
            entry["recall"] = recall(found, exact)
            save(entry)
    by_m: dict[int, list[int]] = {}
    for pair in filter(None, args.hnsw.split(",")):
        m, ef = map(int, pair.split(":"))
        by_m.setdefault(m, []).append(ef)
    for m, efs in by_m.items():
        retriever, build_s = built(IndexSpec("hnsw", hnsw_m=m))
        for ef in efs:
            retriever.index.hnsw.efSearch = ef
            found, entry = searched(f"faiss HNSW M={m} efSearch={ef}", retriever, build_s)
            entry["recall"] = recall(found, exact)
            save(entry)
    return report


if __name__ == "__main__":
    main()
