"""A search's trial records read for people: the best trial (by validation only), ``best.yaml``
and ``trials.md`` (written by :mod:`recbole_umi.experiments.tune`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from recbole_umi.files import write_atomic
from recbole_umi.metrics import metric_column
from recbole_umi.provenance import code_listing, code_records

__all__ = ["SEARCH_SEED_COMMENT", "NoScoredTrialError", "best_trial", "failed", "write_best", "trials_table",
           "pruned_text"]

# best.yaml names the training seed of the search's trials on a line of its own, so that
# compare can refuse to use that seed in a table of the chosen settings (a winner's curse:
# the trials were chosen on runs of that seed).
SEARCH_SEED_COMMENT = "# search training seed: "


def pruned_text(trial: dict) -> str:
    """``", pruned after validation 3"`` for a trial the stop rule ended, else ``""``."""
    return "" if trial.get("pruned_at") is None else f", pruned after validation {trial['pruned_at']}"


class NoScoredTrialError(ValueError):
    """Every trial of a search failed: there is nothing to choose from."""


def failed(trial: dict) -> bool:
    """Whether the trial failed (its training diverged): it has no score and is never chosen."""
    return trial.get("failed") is not None


def best_trial(trials: list[dict]) -> dict:
    """The trial with the best validation score (ties: the earlier); failed trials are not
    chosen."""
    if not trials:
        raise NoScoredTrialError("no trial has finished: nothing to choose from")
    scored = [t for t in trials if not failed(t)]
    if not scored:
        raise NoScoredTrialError(
            f"all {len(trials)} trials failed (see each trial's 'failed'): nothing to choose from; narrow the "
            "space away from the settings that diverge (the learning rate, the temperature)"
        )
    sign = 1 if scored[0]["valid_score_bigger"] else -1
    return max(scored, key=lambda t: (sign * t["best_valid_score"], -t["trial"]))


def write_best(path: Path, best: dict, n_trials: int, algo: str, model: str, dataset: str, training_seed: int) -> None:
    """``best.yaml``: the best trial's settings, a file ``--config_files`` accepts, headed by
    how it was chosen and the search's training seed (:data:`SEARCH_SEED_COMMENT`)."""
    header = (
        f"# Best of {n_trials} {algo} trials for {model} on {dataset}, chosen on validation users: trial "
        f"{best['trial']}, valid score {best['best_valid_score']:.4f}.\n"
        "# Written by python -m recbole_umi.tune; use with --config_files.\n"
        f"{SEARCH_SEED_COMMENT}{training_seed} (compare refuses it as a seed of a table of these settings)\n"
    )
    write_atomic(path, header + yaml.safe_dump(best["params"], sort_keys=True))


def trials_table(trials: list[dict], best: dict, budget: int | None = None, widened_from: list | None = None,
                 space: dict | None = None) -> str:
    """``trials.md``: every trial's settings, validation and test results, epochs (and where
    the stop rule pruned it) and seconds, the best in bold, failed trials with their error,
    and the code they ran; where the search was widened (``widened_from``: the earlier
    spaces, each with its number of trials; ``space``: the current one), what changed after
    which trial."""
    names = list(trials[0]["params"])
    metrics = list(best["best_valid_result"])
    # the paper's names under its protocol (trials recorded before the protocol was: RecBole's)
    protocol = best.get("eval_protocol")
    shown = {m: metric_column(m, protocol) for m in metrics}
    valid = trials[-1].get("valid_metric", "score")
    lines = [f"Every trial; the best validation {valid} is in bold. Test results are recorded, never used to choose."]
    if budget is not None and len(trials) > budget:
        lines.append(f"The budget is {budget} trials: the best is chosen from trials 1-{budget}; "
                     f"trials {budget + 1}-{len(trials)} ran before the budget was cut and are listed, "
                     "not chosen from.")
    spaces = [stage["space"] for stage in widened_from or []] + [space]
    for stage, after in zip(widened_from or [], spaces[1:]):
        changes = "; ".join(f"{name} {' '.join(map(str, stage['space'][name]))} -> {' '.join(map(str, after[name]))}"
                            for name in after if stage["space"][name] != after[name])
        lines.append(f"The space was widened after trial {stage['trials']}: {changes}.")
    lines += [
        "",
        "| trial | " + " | ".join(names) + f" | valid {valid} | " + " | ".join(f"test {shown[m]}" for m in metrics)
        + " | epochs (best) | s |",
        "| --- |" + " --- |" * (len(names) + len(metrics) + 3),
    ]
    for t in trials:
        values = " | ".join(f"{t['params'][n]:.4g}" if isinstance(t["params"][n], float) else str(t["params"][n])
                            for n in names)
        if failed(t):
            tests = " | ".join("-" for _ in metrics)
            lines.append(f"| {t['trial']} | {values} | failed: {t['failed']} | {tests} | "
                         f"{t['epochs'] or '-'} | {t['wall_s']:.0f} |")
            continue
        score = f"{t['best_valid_score']:.4f}"
        score = f"**{score}**" if t["trial"] == best["trial"] else score
        tests = " | ".join(f"{t['test_result'][m]:.4f}" for m in metrics)
        # trials recorded before the epochs were: -
        epochs = f"{t['epochs']} ({'-' if t['best_epoch'] is None else t['best_epoch']})" if "epochs" in t else "-"
        epochs += pruned_text(t)
        lines.append(f"| {t['trial']} | {values} | {score} | {tests} | {epochs} | {t['wall_s']:.0f} |")
    # a trial continued on other code is listed under each code it ran
    records = [record for t in trials for record in code_records(str(t["trial"]), t)]
    lines += ["", *code_listing(records, "the search", allow_mixed=True, runs="Trials", named="trials ")]
    return "\n".join(lines) + "\n"
