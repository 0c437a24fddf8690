"""Hyper-parameter search on validation users, through RecBole's ``HyperTuning``.

    python -m recbole_umi.tune --model=UMI --dataset=ml-1m --params_file=tuning/ml-1m/UMI.hyper \\
        --out=results/tuning/ml-1m/UMI [--algo=bayes|random|exhaustive] [--max_evals=N] \\
        [--search_seed=S] [--config_files=a.yaml,...] [--prune_after=V] [--key=value ...]

The params file has RecBole's format, one setting a line: ``learning_rate loguniform
-8,-4``, ``n_interests choice [2,3,4]``, ``softmax_temperature uniform 0.5,1.5`` (also
``quniform low,high,q``; give integer settings as ``choice``). Plugin and RecBole models
alike, and the variants of ``compare`` (``MIND+HN``, ``UMI-IR``, ...). Each trial trains once through :func:`recbole_umi.run` with the searched values
over the fixed settings (``--config_files``, ``--key=value``) and is written to
``<out>/trials/<n>.json`` as soon as it ends: its settings, its best validation score and
result, its test result, and the code that ran it (:mod:`recbole_umi.provenance`; a search
whose finished trials ran other code is not resumed without ``--allow_mixed_code=True``). Test results are recorded, never used: the best trial is the
one with the best validation score (``valid_metric``), written as ``<out>/best.yaml``, a
file ``--config_files`` accepts. ``<out>/trials.md`` lists every trial.

The first trial is the model's current settings of the searched names (its YAML defaults
under the fixed settings; ``--start_from_defaults=False`` to leave it out), so the chosen
settings are never worse on validation than the untuned ones. An interrupted search
resumes where it stopped: the finished trials are read back into
hyperopt, and its random state is advanced past them, so the resumed search proposes
what the uninterrupted one would have; a trial cut short mid-training continues from its
last finished epoch (its checkpoints are kept in ``<checkpoint_dir>/tune-<out>-<hash>/<trial>/``
until it ends). Resuming with another model, dataset, params file, algorithm, seed or fixed
settings fails before anything trains, except with a params file whose space holds the old
one (the same names, every choice kept, every range reaching as far): a search whose chosen
value sits on the edge of its space goes on in the widened space, with a larger
``--max_evals`` (``scripts/search_edges.py`` writes such a file); ``tuning.json`` keeps the
earlier spaces and ``trials.md`` says which trials drew from which.

``--prune_after=V`` prunes trials by the median stopping rule
(:mod:`recbole_umi.experiments.pruning`): after its V-th validation and each one after, a
trial whose best validation score is below the median of the finished, unpruned trials' best
scores by the same validation stops there (with at least ``--prune_min_trials`` such trials,
default 4). A pruned trial is a finished trial, chosen like any other if its score is the
best; trials.md marks it. Every trial records its validation curve.

A trial whose training diverges (its loss stops being finite:
:class:`~recbole_umi.checkpoints.trainer.TrainingDivergedError`) is a failed trial: recorded
(``failed``, with the epoch and error, no score), counted in the budget, never chosen, and
the search goes on; any other error stops the search (a bug should not burn the budget).

hyperopt is pinned to 0.2.5 (setup.cfg says why).
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from recbole.trainer.hyper_tuning import HyperTuning  # noqa: E402

from recbole_umi.checkpoints.trainer import TrainingDivergedError  # noqa: E402
from recbole_umi.experiments.runs import (  # noqa: E402
    RunClock,
    SettingsMismatchError,
    checkpoint_root,
    comparable,
    epochs_text,
    interrupted_run,
    run_settings,
)
from recbole_umi.experiments.params_file import (  # noqa: E402
    ParamsFileError,
    hyperopt_vals,
    read_params_file,
    space_ends,
    widening_problems,
)
from recbole_umi.experiments.pruning import MedianStoppingRule  # noqa: E402
from recbole_umi.experiments.trials import (  # noqa: E402
    SEARCH_SEED_COMMENT,
    best_trial,
    failed,
    pruned_text,
    trials_table,
    write_best,
)
from recbole_umi.experiments.variants import resolve_variant  # noqa: E402
from recbole_umi.config import Config, comma_list, parse_cmd_args  # noqa: E402
from recbole_umi.files import DamagedFileError, read_json, record_json, run_lock, set_aside, write_atomic  # noqa: E402
from recbole_umi.metrics import metric_column  # noqa: E402
from recbole_umi.plain import plain_data  # noqa: E402
from recbole_umi.provenance import check_same_code, code_records, code_version  # noqa: E402
from recbole_umi.quick_start import run  # noqa: E402

__all__ = ["ALGORITHMS", "SEARCH_SEED_COMMENT", "SearchBusyError", "ParamsFileError", "read_params_file", "Tuning",
           "best_trial", "write_best", "trials_table", "tune", "main"]

ALGORITHMS = ("bayes", "random", "exhaustive")
class SearchBusyError(RuntimeError):
    """Another process is running the same search (its output folder is locked)."""


class Tuning(HyperTuning):
    """RecBole's ``HyperTuning`` that writes every trial to disk and resumes from it.

    Args:
        model, dataset: what is tuned.
        params_file: RecBole's params-file format.
        out: the output folder.
        algo: ``bayes`` (TPE), ``random`` or ``exhaustive``.
        max_evals: trials in all, the finished ones included (exhaustive: the grid's size);
            the best is chosen from the first max_evals trials on disk.
        seed: the search's random seed.
        config_file_list, config_dict: fixed settings of every trial.
        log: where progress lines go.
        prune_after: validations before the median stopping rule may stop a trial (0: off).
        prune_min_trials: finished, unpruned trials the rule needs before it stops any.
    """

    def __init__(self, model, dataset, params_file, out, algo="bayes", max_evals=10, seed=2020,
                 config_file_list=None, config_dict=None, log=print, start_from_defaults=True,
                 allow_mixed_code=False, prune_after=0, prune_min_trials=4):
        if algo not in ALGORITHMS:
            raise ValueError(f"--algo must be one of {ALGORITHMS}, got {algo!r}")
        if not (isinstance(max_evals, int) and max_evals >= 1):
            raise ValueError(f"--max_evals must be an integer of at least 1 (the number of trials), got {max_evals!r}")
        if prune_after < 0 or prune_min_trials < 1:
            raise ValueError(f"--prune_after must be at least 0 (0: no pruning) and --prune_min_trials at least 1, "
                             f"got {prune_after} and {prune_min_trials}")
        self.space_spec = read_params_file(params_file)
        self.model_name, variant_settings = resolve_variant(model)  # a suffix the model lacks: refused
        self.dataset_name = dataset
        self.out = Path(out)
        self.seed = seed
        self.config_file_list = list(config_file_list or [])
        self.fixed_settings = {**(config_dict or {}), **variant_settings}
        self.log = log
        self.start_from_defaults = start_from_defaults
        self.allow_mixed_code = allow_mixed_code
        self.prune_after = prune_after
        self.prune_min_trials = prune_min_trials
        # RecBole's own space builder, fed from our reader (which allows comments)
        space = {}
        for name, (kind, values) in self.space_spec.items():
            space.setdefault(kind, {})[name] = values
        super().__init__(self._objective, params_dict=space, algo=algo, max_evals=max_evals)
        # no early stop: every model gets the same number of trials (RecBole's HyperTuning
        # stops after 10 trials without gain, and sets max_evals to the grid for exhaustive)
        self.early_stop_fn = _never_stop
        self.record = json.loads(json.dumps({
            "model": model,
            "dataset": dataset,
            "algo": algo,
            "seed": seed,
            "space": self.space_spec,
            "settings": run_settings(config_file_list, self.fixed_settings),
            "start_from_defaults": start_from_defaults,
            # a search without pruning keeps the record it had before pruning existed
            **({"prune_after": prune_after, "prune_min_trials": prune_min_trials} if prune_after else {}),
        }))
        self.defaults = self._check_searched_names()

    def _check_searched_names(self) -> dict:
        """Every searched name must be a setting of the model: fail now, not after hours.
        Returns the model's current values of the searched names (the defaults trial)."""
        config = Config(self.model_name, self.dataset_name, self.config_file_list,
                        {**self.fixed_settings, "state": "ERROR"})
        unknown = [name for name in self.space_spec if name not in config.final_config_dict]
        if unknown:
            raise ParamsFileError(f"{', '.join(unknown)}: not a setting of {self.model_name} (check the params file's names)")
        for name, (kind, values) in self.space_spec.items():  # every value, or both ends, must pass
            candidates = values if kind == "choice" else list(space_ends(kind, values))
            for value in candidates:
                Config(self.model_name, self.dataset_name, self.config_file_list,
                       {**self.fixed_settings, name: value, "state": "ERROR"})
        self.training_seed = config["seed"]  # every trial trains with it
        self.valid_bigger = bool(config["valid_metric_bigger"])
        # the validation score's name, as tables print it (the paper's under its protocol)
        self.valid_label = metric_column(str(config["valid_metric"]), config["eval_protocol"])
        self.eval_protocol = config["eval_protocol"]
        defaults = {name: config[name] for name in self.space_spec}
        if self.start_from_defaults:
            for name, (kind, values) in self.space_spec.items():
                low, high = (None, None) if kind == "choice" else space_ends(kind, values)
                inside = defaults[name] in values if kind == "choice" else low <= defaults[name] <= high
                if not inside:
                    raise ParamsFileError(
                        f"{name}: the current value {defaults[name]!r} is outside the searched {kind} {values}; "
                        "widen the space, or leave the defaults trial out (--start_from_defaults=False)"
                    )
        return defaults

    # -- files -------------------------------------------------------------------------
    def trial_file(self, number: int) -> Path:
        return self.out / "trials" / f"{number:03d}.json"

    def finished_trials(self) -> list[dict]:
        return [read_json(p) for p in sorted((self.out / "trials").glob("*.json"))]

    def _check_or_write_record(self) -> None:
        path = self.out / "tuning.json"
        if path.exists():
            stored = read_json(path)

            def same(key):
                if key == "settings":  # command-line strings read as YAML, as compare does
                    return comparable(stored.get(key)) == comparable(self.record[key])
                return stored.get(key) == self.record[key]

            changed = [key for key in self.record if not same(key)]
            changed += [key for key in ("prune_after", "prune_min_trials") if key in stored and key not in self.record]
            widening = changed == ["space"] and not widening_problems(self.record["space"], stored["space"])
            if changed and not widening:
                problems = widening_problems(self.record["space"], stored["space"]) if "space" in changed else []
                raise SettingsMismatchError(
                    f"{self.out} holds a search with another {', '.join(changed)}"
                    + (f" (a search resumes in a wider space only: {'; '.join(problems)})" if problems else "")
                    + ": use another --out, or delete the folder to start again"
                )
            # the spaces the search drew from before (each with the number of trials drawn from it)
            self.record["widened_from"] = stored.get("widened_from", [])
            if widening:
                done = len(self.finished_trials())
                self.record["widened_from"].append({"space": stored["space"], "trials": done})
                names = [n for n in stored["space"] if stored["space"][n] != self.record["space"][n]]
                self.log(f"{self.out}: the space widened after {done} trials ({', '.join(names)}); the search goes on in it")
                write_atomic(path, json.dumps(self.record, indent=2) + "\n")
        else:
            write_atomic(path, json.dumps(self.record, indent=2) + "\n")

    def _check_code(self) -> None:
        """Refuse to add trials of this code to finished trials of other code (the choice
        among them would mix code versions), unless ``allow_mixed_code``."""
        records = [record for t in self.finished_trials() for record in code_records(f"trial {t['trial']}", t)]
        if len(records) < self.max_evals:
            records.append({"name": "the trials to run now", "code": code_version()})
        check_same_code(records, f"the search in {self.out}", self.allow_mixed_code)

    # -- one trial ---------------------------------------------------------------------
    def trial_checkpoints(self, number: int) -> Path:
        """Where trial ``number`` keeps its checkpoints while it trains (removed when it ends)."""
        return checkpoint_root(self.out, "tune", self.config_file_list, self.fixed_settings) / f"{number:03d}"

    def stop_rule(self) -> MedianStoppingRule | None:
        """The median stopping rule over the finished, unpruned trials (None: no pruning)."""
        if not self.prune_after:
            return None
        curves = [t["valid_curve"] for t in self.finished_trials()
                  if t.get("pruned_at") is None and t.get("valid_curve")]
        return MedianStoppingRule(curves, self.prune_after, self.prune_min_trials, self.valid_bigger)

    def _objective(self, params: dict, _fixed_files) -> dict:
        settings = {**self.fixed_settings, **params}
        checkpoints = self.trial_checkpoints(self._number)
        # a trial cut short continues: the resumed search proposes the same values again
        resume = interrupted_run(checkpoints, run_settings(self.config_file_list, settings), self.log)
        if resume is not None:
            self.log(f"  continuing the interrupted trial from {resume}")
        self._clock = clock = RunClock(checkpoints, resumed=resume is not None)
        try:
            result = run(self.model_name, self.dataset_name, self.config_file_list,
                         {**settings, "checkpoint_dir": str(checkpoints)}, saved=True,
                         resume=None if resume is None else str(resume), stop_rule=self.stop_rule())
        finally:
            clock.stop()
        return {"model": self.model_name, "resumed_from": None if resume is None else str(resume), **result}

    def trial(self, params):
        number = len(self.finished_trials()) + 1
        self._number, self._clock = number, None
        started = time.perf_counter()
        params = plain_data(params)  # hyperopt hands out numpy scalars
        self.log(f"[{number}/{self.max_evals}] {self.record['model']}: {params} ...")
        defaults_trial = self.start_from_defaults and number == 1
        head = {"trial": number, "proposed_by": "defaults" if defaults_trial else self.record["algo"], "params": params}
        try:
            outcome = super().trial(params)
        except TrainingDivergedError as error:  # a failed trial: recorded, counted, never chosen
            from hyperopt import STATUS_FAIL

            self._finish(number, started, {
                **head, "failed": str(error), "best_valid_score": None, "valid_score_bigger": self.valid_bigger,
                "best_valid_result": None, "test_result": None, "eval_protocol": self.eval_protocol,
                "resumed_from": None, "epochs": None if error.epoch is None else error.epoch + 1, "best_epoch": None,
                "valid_curve": None, "pruned_at": None,
            })
            return {"status": STATUS_FAIL, "failure": str(error)}
        result = self.params2result[self.params2str(params)]
        record = {
            **head,
            "best_valid_score": float(result["best_valid_score"]),
            "valid_score_bigger": bool(result["valid_score_bigger"]),
            "best_valid_result": {k: float(v) for k, v in result["best_valid_result"].items()},
            "test_result": {k: float(v) for k, v in result["test_result"].items()},
            "eval_protocol": result.get("eval_protocol"),
            "resumed_from": result.get("resumed_from"),
            "epochs": result["epochs"],
            "best_epoch": result["best_epoch"],
            "valid_curve": result.get("valid_scores"),
            "pruned_at": result.get("stopped_at_validation"),  # the validation after which the rule stopped it
        }
        self._finish(number, started, record)
        return outcome

    def _finish(self, number: int, started: float, record: dict) -> None:
        """Write trial ``number``'s record, with what every trial records (failed or not)."""
        clock = self._clock  # None where no training started
        record = {**record,
                  "wall_s": round(clock.seconds() if clock else time.perf_counter() - started, 1),  # all parts
                  "wall_s_all_parts": bool(clock and clock.complete),
                  "code": code_version(),  # the code that ran it (a resumed trial: the code that finished it)
                  "parts": clock.parts if clock else None,  # each part's seconds, code and machine
                  "training_seed": self.training_seed,
                  "valid_metric": self.valid_label}
        write_atomic(self.trial_file(number), record_json(record))  # whole or absent
        shutil.rmtree(self.trial_checkpoints(number), ignore_errors=True)  # the record holds what counts
        self._report(record)

    def _report(self, record: dict) -> None:
        trials = self.finished_trials()
        scored = [t for t in trials if not failed(t)]
        left = self.max_evals - len(trials)
        mean_s = sum(t["wall_s"] for t in trials) / len(trials)
        outcome = (f"FAILED in {record['wall_s']:.0f}s: {record['failed']}" if failed(record) else
                   f"valid {self.valid_label} {record['best_valid_score']:.4f} in "
                   f"{record['wall_s']:.0f}s ({epochs_text(record)}{pruned_text(record)})")
        if scored:
            best = best_trial(scored)
            so_far = f"best so far {best['best_valid_score']:.4f} (trial {best['trial']})"
        else:
            so_far = "no trial with a score yet"
        self.log(f"[{record['trial']}/{self.max_evals}] {outcome}; {so_far}; about {left * mean_s / 60:.0f} min left")

    # -- the search --------------------------------------------------------------------
    def run(self) -> dict:
        """Run the trials still missing; returns the best finished trial (by validation). One
        process at a time per output folder (:class:`SearchBusyError` for a second one)."""
        (self.out / "trials").mkdir(parents=True, exist_ok=True)
        with run_lock(self.out / "search") as mine:
            if not mine:
                raise SearchBusyError(
                    f"another process is running the search in {self.out}: its trials follow one another (each "
                    "proposal depends on the results before it), so a second process cannot share them; wait for "
                    "it, or search into another --out"
                )
            return self._run()

    def _set_aside_damaged_trials(self) -> None:
        """A trial file that is not JSON is set aside (``.damaged``) with every later one, since
        the later proposals followed it: the resumed search proposes and runs them again."""
        files = sorted((self.out / "trials").glob("*.json"))
        for index, path in enumerate(files):
            try:
                read_json(path)
            except DamagedFileError as error:
                for later in files[index:]:
                    kept = set_aside(later)
                    self.log(f"{error if later == path else later}: set aside as {kept.name}; the trial is run again")
                return

    def _run(self) -> dict:
        from hyperopt import JOB_STATE_DONE, STATUS_FAIL, STATUS_OK, Trials, fmin
        from hyperopt.exceptions import AllTrialsFailed

        self._set_aside_damaged_trials()
        self._check_code()  # first: a refused run leaves tuning.json as it was (a widening unrecorded)
        self._check_or_write_record()
        already = len(self.finished_trials())
        if already:
            self.log(f"{already} of {self.max_evals} trials already done in {self.out / 'trials'}")
        elif self.start_from_defaults:
            self.trial(dict(self.defaults))  # the first trial, proposed by no algorithm
        finished = self.finished_trials()
        trials = Trials()
        for tid, record in zip(trials.new_trial_ids(len(finished)), finished):
            if failed(record):
                outcome = {"status": STATUS_FAIL, "failure": record["failed"]}
            else:
                score = record["best_valid_score"]
                outcome = {"loss": -score if record["valid_score_bigger"] else score, "status": STATUS_OK}
            vals = hyperopt_vals(self.space_spec, record["params"])
            misc = {"tid": tid, "cmd": ("domain_attachment", "FMinIter_Domain"), "workdir": None,
                    "idxs": {name: [tid] for name in vals}, "vals": vals}
            doc = trials.new_trial_docs([tid], [None], [outcome], [misc])[0]
            doc["state"] = JOB_STATE_DONE
            trials.insert_trial_docs([doc])
        trials.refresh()
        rstate = np.random.RandomState(self.seed)
        for record in finished:  # hyperopt draws one seed per proposed trial: skip those used
            if record.get("proposed_by") != "defaults":
                rstate.randint(2**31 - 1)
        if len(finished) < self.max_evals:
            try:
                fmin(self.trial, self.space, algo=self.algo, max_evals=self.max_evals, trials=trials,
                     rstate=rstate, early_stop_fn=self.early_stop_fn, show_progressbar=False)
            except AllTrialsFailed:  # hyperopt's argmin at the end; best_trial below says it for us
                pass
        finished = self.finished_trials()
        # the budget decides: a folder that holds more trials (a search cut short to a
        # smaller max_evals later) is chosen from among its first max_evals only
        best = best_trial(finished[: self.max_evals])
        write_best(self.out / "best.yaml", best, min(len(finished), self.max_evals), self.record["algo"],
                   self.record["model"], self.dataset_name, self.training_seed)
        write_atomic(self.out / "trials.md", trials_table(finished, best, self.max_evals,
                                                         self.record.get("widened_from"), self.record["space"]))
        return best


def _never_stop(_trials, *args):
    """hyperopt's early_stop_fn that never stops a search (every model gets its max_evals)."""
    return False, args


def tune(model, dataset, params_file, out, algo="bayes", max_evals=10, seed=2020,
         config_file_list=None, config_dict=None, log=print, start_from_defaults=True,
         allow_mixed_code=False, prune_after=0, prune_min_trials=4) -> dict:
    """Run (or resume) a search; returns the best trial's record."""
    return Tuning(model, dataset, params_file, out, algo, max_evals, seed, config_file_list, config_dict, log,
                  start_from_defaults, allow_mixed_code, prune_after, prune_min_trials).run()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m recbole_umi.tune", allow_abbrev=False,  # no abbreviated options: --key=value settings pass through
                                     description=__doc__.split("\n\n")[0] + " Further --key=value arguments set fixed config keys.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--params_file", required=True, help="RecBole's params-file format")
    parser.add_argument("--out", required=True, help="folder for trials/, best.yaml, trials.md")
    parser.add_argument("--algo", default="bayes", choices=ALGORITHMS)
    parser.add_argument("--max_evals", type=int, default=10, help="trials in all (exhaustive: the grid)")
    parser.add_argument("--search_seed", type=int, default=2020, help="the search's seed (the training seed is --seed)")
    parser.add_argument("--config_files", default=None, help="comma-separated YAML files of fixed settings")
    parser.add_argument("--start_from_defaults", default="True", choices=("True", "False"),
                        help="make the model's current settings the first trial (default True)")
    parser.add_argument("--allow_mixed_code", default="False", choices=("True", "False"),
                        help="resume a search whose finished trials ran other code (trials.md lists the versions)")
    parser.add_argument("--prune_after", type=int, default=0,
                        help="validations before the median stopping rule may stop a trial (default 0: no pruning)")
    parser.add_argument("--prune_min_trials", type=int, default=4,
                        help="finished, unpruned trials the rule needs before it stops any (default 4)")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    files = comma_list(args.config_files) or None
    best = tune(args.model, args.dataset, args.params_file, args.out, args.algo, args.max_evals, args.search_seed,
                files, parse_cmd_args(rest), start_from_defaults=args.start_from_defaults == "True",
                allow_mixed_code=args.allow_mixed_code == "True", prune_after=args.prune_after,
                prune_min_trials=args.prune_min_trials)
    print(f"best trial {best['trial']}: valid {best['best_valid_score']:.4f} with {best['params']} -> {Path(args.out) / 'best.yaml'}")
    return best
