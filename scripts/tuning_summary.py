"""One line per model of an equal-budget search: what each model's trials reached on validation.

    python scripts/tuning_summary.py results/tuning/ml-1m [--budget=5]

Reads every ``<model>/trials/*.json`` that ``python -m recbole_umi.tune`` wrote under the
folder and prints a markdown table: the trials run, the trial chosen from the first
``budget`` (by validation score, as ``tune --max_evals`` chooses), its validation score,
the default settings' (trial 1, when the search started from them), the settings chosen,
and the search's wall time (">= h" where a trial was resumed after its process ended by code of before
2026-12-05: its record holds the last process's seconds only; later records say
``wall_s_all_parts``). A search with fewer than ``budget`` trials is marked
unfinished. Test results are not shown: they are never used to choose.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.experiments.trials import NoScoredTrialError, best_trial, failed  # noqa: E402


def summary(folder: Path, budget: int) -> str:
    lines = [
        "| model | trials | chosen | valid score | defaults' valid score | chosen settings | search hours |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model_folder in sorted(p for p in folder.iterdir() if (p / "trials").is_dir()):
        trials = [json.loads(f.read_text()) for f in sorted((model_folder / "trials").glob("*.json"))]
        if not trials:
            continue
        counted = [t for t in trials if t["trial"] <= budget]
        # a trial resumed after its process ended, by code of before RunClock, records the last part's seconds
        hours = f"{sum(t['wall_s'] for t in trials) / 3600:.1f}"
        hours = f">= {hours}" if any(t.get("resumed_from") and not t.get("wall_s_all_parts") for t in trials) else hours
        unfinished = " (unfinished)" if len(trials) < budget else ""
        run = f"{len(trials)} of {budget}" if len(trials) < budget else f"{budget}" + (f" (+{len(trials) - budget})" if len(trials) > budget else "")
        try:
            best = best_trial(counted)
        except NoScoredTrialError:  # every trial so far failed
            lines.append(f"| {model_folder.name}{unfinished} | {run} ({len(counted)} failed) | - | - | "
                         f"failed | - | {hours} |")
            continue
        defaults = next((t for t in trials if t.get("proposed_by") == "defaults"), None)
        settings = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(best["params"].items()))
        default_score = "-" if defaults is None else "failed" if failed(defaults) else f"{defaults['best_valid_score']:.4f}"
        n_failed = sum(failed(t) for t in counted)
        run += f" ({n_failed} failed)" if n_failed else ""
        lines.append(f"| {model_folder.name}{unfinished} | {run} | {best['trial']} | {best['best_valid_score']:.4f} | "
                     f"{default_score} | {settings} | {hours} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("folder", type=Path, help="the search's output folder, one subfolder per model")
    parser.add_argument("--budget", type=int, default=5, help="trials each model is chosen from (default 5)")
    args = parser.parse_args(argv)
    print(summary(args.folder, args.budget), end="")


if __name__ == "__main__":
    main()
