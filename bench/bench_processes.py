"""One process with 2 threads against 2 processes with 1 thread each (and one process with
one thread, for scale): UMI on ml-1m, one epoch.

Each configuration runs ``run_recbole_umi.py --epochs=1`` as a fresh command, alternating,
``--repeats`` times; reported are the medians of the whole command's wall time and of the
training epoch's time that RecBole logs (``epoch 0 training [time: ...]``). Run it with the
machine otherwise idle.

    python bench/bench_processes.py [--data_path=../shared/data] [--repeats=2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATIONS = {"1 process x 2 threads": (1, "2"), "2 processes x 1 thread": (2, "1"), "1 process x 1 thread": (1, "1")}


def one_run(nproc: int, threads: str, data_path: str, batch: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as work:
        command = [sys.executable, str(ROOT / "run_recbole_umi.py"), "--model=UMI", "--dataset=ml-1m",
                   f"--data_path={data_path}", "--epochs=1", f"--train_batch_size={batch}", f"--nproc={nproc}",
                   "--show_progress=False", f"--checkpoint_dir={work}/saved"]
        started = time.perf_counter()
        subprocess.run(command, cwd=work, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": threads})
        wall = time.perf_counter() - started
        logs = sorted(Path(work, "log").rglob("*.log"))
        epoch = [float(m) for log in logs for m in re.findall(r"epoch 0 training \[time: ([0-9.]+)s", log.read_text())]
    return wall, max(epoch)  # the slowest process's epoch (all log it at level INFO only on rank 0)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_path", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    runs = {name: [] for name in CONFIGURATIONS}
    for _ in range(args.repeats):
        for name, (nproc, threads) in CONFIGURATIONS.items():
            runs[name].append(one_run(nproc, threads, args.data_path, args.batch))
            print(name, runs[name][-1], flush=True)
    report = {name: {"wall_s": statistics.median(w for w, _ in r), "epoch_s": statistics.median(e for _, e in r), "runs": r}
              for name, r in runs.items()}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
