"""Today's model-only training step against an earlier commit's, side by side: the speed
issue's "at least 2x faster than today" asks for the step of the code the issue was filed
against (20.7 ms for UMI at batch 1024 on 2 threads, docs/benchmarks.md, of commit ab8c1e6),
which a figure measured on another day cannot answer. This runs, in alternating rounds on
one machine, that commit's own ``bench/profile_step.py`` (in a worktree of it) and today's
``bench/compile_step.py`` (eager and compiled), each in a fresh process, and writes the
medians over the rounds and their ratios. Run it with the machine otherwise idle:

    OMP_NUM_THREADS=2 python bench/step_vs_commit.py --baseline=ab8c1e6 --models=UMI,MIND --rounds=3 \\
        --json=bench/results/step_vs_ab8c1e6_2threads.json -- --dataset=ml-1m --data_path=../shared/data

The settings after ``--`` go to both (with the batch of 1024, d = 32, K = 3, 5 uniform
negatives of the issue, and per model what the baseline's defaults were where today's
differ: UMI's refinement width 16). The two scripts time the same step (zero_grad, forward,
loss, backward, Adam) on batches of the same size drawn differently (the baseline's 20 random
batches, today's first full batches).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.provenance import code_version  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COMMON = ["--train_batch_size=1024", "--embedding_size=32", "--n_negatives=5", "--negative_sampler=uniform"]
SINGLE_INTEREST = {"YoutubeDNN", "ProfileDSSM", "SASRecMatching"}  # the K = 3 for the others
# where today's defaults differ from the baseline's (ab8c1e6): the spec's Eq 9 width went 16 -> 32
PER_MODEL = {"UMI": ["--refine_hidden_size=16"]}


def model_settings(model: str) -> list[str]:
    return [*COMMON, *([] if model in SINGLE_INTEREST else ["--n_interests=3"]), *PER_MODEL.get(model, [])]


def baseline_ms(worktree: Path, model: str, settings: list[str]) -> float:
    done = subprocess.run([sys.executable, "bench/profile_step.py", f"--model={model}", "--steps=100", "--top=1",
                           *settings], cwd=worktree, capture_output=True, text=True, check=True)
    return float(re.search(r"([\d.]+) ms per step", done.stdout).group(1))


def today_ms(model: str, settings: list[str]) -> dict:
    # glibc's default memory handling, as the baseline's profile_step.py has it (it had no
    # keep_freed_memory; at T = 10 no tensor reaches glibc's threshold either way)
    done = subprocess.run([sys.executable, "bench/compile_step.py", f"--models={model}", "--steps=30", *settings,
                           "--keep_freed_memory=False"], cwd=ROOT, capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {"eager_ms": figures["eager_ms"], "compiled_ms": figures["compiled_ms"]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="the earlier commit")
    parser.add_argument("--models", default="UMI,MIND")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("settings", nargs="*", help="after --: settings for both")
    args = parser.parse_args(argv)
    worktree = ROOT.parent / f".step-baseline-{args.baseline}"
    if not worktree.is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.baseline], cwd=ROOT, check=True,
                       capture_output=True)
    models = args.models.split(",")
    rounds = {model: {"baseline_ms": [], "eager_ms": [], "compiled_ms": []} for model in models}
    for number in range(args.rounds):
        for model in models:
            settings = [*model_settings(model), *args.settings]
            rounds[model]["baseline_ms"].append(baseline_ms(worktree, model, settings))
            for key, value in today_ms(model, settings).items():
                rounds[model][key].append(value)
            print(json.dumps({"round": number + 1, "model": model, **{k: v[-1] for k, v in rounds[model].items()}}),
                  flush=True)
    result = {"baseline": subprocess.run(["git", "rev-parse", args.baseline], cwd=ROOT, capture_output=True,
                                         text=True).stdout.strip(),
              "today": code_version(), "settings": COMMON + args.settings,
              "per_model": {model: model_settings(model)[len(COMMON):] for model in models}, "rounds": rounds,
              "medians": {}}
    for model, times in rounds.items():
        medians = {key: statistics.median(values) for key, values in times.items()}
        medians["baseline_over_compiled"] = round(medians["baseline_ms"] / medians["compiled_ms"], 2)
        medians["baseline_over_eager"] = round(medians["baseline_ms"] / medians["eager_ms"], 2)
        result["medians"][model] = medians
    print(json.dumps(result["medians"], indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
