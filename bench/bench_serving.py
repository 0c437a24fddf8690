"""What a large serving request costs: ``Recommender.recommend`` for many users at once, in
chunks of ``CHUNK_USERS`` (the default) against one chunk holding every user (how it ran
before requests were chunked), each in a fresh process for its peak memory.

UMI is trained one epoch on ml-100k (ships inside RecBole) and exported once; then each mode
asks for the top ``--n`` of ``--users`` users (the export's users, cycled) and reports its
wall time and the process's peak resident memory (``resource.getrusage``). Written to
``--out`` (JSON).

    OMP_NUM_THREADS=1 python bench/bench_serving.py --users=50000 --n=10 --out=bench/results/serving.json

Run it with the machine otherwise idle for the times; the memory does not depend on it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from recbole_umi import recommend
from recbole_umi.recommend import Recommender
folder, users, n, chunk = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if chunk:
    recommend.CHUNK_USERS = chunk
recommender = Recommender(folder)
tokens = list(recommender.user_ids)
request = [tokens[i % len(tokens)] for i in range(users)]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
lists = recommender.recommend(users=request, n=n)
print(json.dumps({"seconds": time.perf_counter() - started, "lists": len(lists),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_request_mib": base / 1024, "items": recommender.retriever.n_items,
                  "chunk_users": recommend.CHUNK_USERS}))
"""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50000)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "serving.json"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from recbole_umi.export import export
    from recbole_umi.quick_start import run

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    run("UMI", "ml-100k", config_dict={"epochs": 1, "checkpoint_dir": str(work / "saved"), "state": "ERROR",
                                       "show_progress": False})
    checkpoint = next(p for p in (work / "saved").glob("UMI-*.pth") if not p.stem.endswith("-last"))
    folder = export(checkpoint, work / "export")
    results = {"users": args.users, "n": args.n}
    for label, chunk in (("chunked (CHUNK_USERS)", 0), ("one chunk (as before)", args.users)):
        done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(folder), str(args.users), str(args.n),
                               str(chunk)], capture_output=True, text=True, check=True)
        results[label] = json.loads(done.stdout.strip().splitlines()[-1])
        print(label, results[label])
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
