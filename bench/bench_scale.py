"""How loading, memory and training speed grow with the data, at the paper's industrial
shape: T = 50, K = 6, 20 profile fields, up to a million items.

For each size (interactions, in millions) one fresh process generates the synthetic benchmark
(:mod:`recbole_umi.datasets.synth`, 20 profile fields, ``--items`` items, users scaled
with the size), then another loads and splits it under the paper's protocol
through RecBole, and trains UMI for ``--steps`` steps of batch 1024 with 10,240 shared
negatives (popularity sampling, log-Q), timing those after ``--warmup``. Reported per size:
generation time (writing the files and syncing them to disk included), load-and-split
time, training samples per second, and the process's peak resident memory. Results go to
``--out`` (JSON) as each size finishes, and a figure of the three against the size to
``--figure``. Run it with the machine otherwise idle.

    python bench/bench_scale.py --sizes=1,5,20,50 --out=bench/results/scale.json --figure=docs/scale.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recbole_umi.files import write_atomic  # noqa: E402 (light: the standard library only)

# The generating child: argv = size (millions), items, work folder, repository; prints one
# JSON line. Apart from the training child, so that its arrays do not count in that one's
# peak memory.
GENERATE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[4])
size, items, work = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
from recbole_umi.datasets.synth import SynthSpec, generate, write
users = int(round(size * 1_000_000 / 22.7))  # the defaults give about 22.7 interactions a user
started = time.perf_counter()
write(generate(SynthSpec(users=users, items=items, categories=max(50, items // 1000))), work)
print(json.dumps({"users": users, "items": items, "generate_s": time.perf_counter() - started}))
"""

# The training child: argv = steps, warmup, work folder, repository; prints one JSON line.
TRAIN = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
steps, warmup, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
import torch
from recbole_umi.config import Config
from recbole_umi.pipeline import build
started = time.perf_counter()
config = Config("UMI", "synth", config_file_list=[f"{work}/synth.yaml"], config_dict={
    "data_path": work, "state": "ERROR", "n_interests": 6, "n_negatives": 10240, "shared_negatives": True,
    "negative_sampler": "popularity", "MAX_ITEM_LIST_LENGTH": 50, "train_batch_size": 1024})
dataset, train, valid, test, model = build(config)
load_s = time.perf_counter() - started
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
batches = iter(train)
for step in range(warmup + steps):
    if step == warmup:
        started = time.perf_counter()
    batch = next(batches)
    optimizer.zero_grad()
    model.calculate_loss(batch).backward()
    optimizer.step()
train_s = time.perf_counter() - started
print(json.dumps({"interactions": len(dataset.inter_feat), "training_rows": len(train.dataset), "load_split_s": load_s,
                  "samples_per_s": steps * 1024 / train_s,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def child(script: str, *args) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *map(str, args), str(ROOT)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["interactions"] / 1e6 for r in results]
    panels = [("load_split_s", "load and split (s)"), ("peak_rss_mib", "peak memory (MiB)"),
              ("samples_per_s", "training samples / s")]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for axis, (key, label) in zip(axes, panels):
        axis.plot(sizes, [r[key] for r in results], marker="o")
        axis.set_xlabel("interactions (millions)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.set_ylim(bottom=0)
    figure.suptitle("UMI at T = 50, K = 6, 20 profile fields, 10,240 shared negatives (bench/bench_scale.py)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,5,20,50", help="interactions in millions, comma-separated")
    parser.add_argument("--items", type=int, default=1_000_000, help="the catalogue at every size")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default="bench/results/scale.json")
    parser.add_argument("--figure", default=None)
    args = parser.parse_args(argv)
    out = Path(args.out)
    done = json.loads(out.read_text()) if out.is_file() else []  # resumes: finished sizes are kept
    for size in (float(s) for s in args.sizes.split(",") if s):
        if any(r["size_millions"] == size for r in done):
            continue
        with tempfile.TemporaryDirectory() as work:
            generated = child(GENERATE, size, args.items, work)
            trained = child(TRAIN, args.steps, args.warmup, work)
        done.append({"size_millions": size, **generated, **trained})
        print(json.dumps(done[-1]), flush=True)
        write_atomic(out, json.dumps(done, indent=2) + "\n")  # whole: a kill mid-write keeps the sizes done
    if args.figure:
        plot(sorted(done, key=lambda r: r["interactions"]), Path(args.figure))
    return done


if __name__ == "__main__":
    main()
