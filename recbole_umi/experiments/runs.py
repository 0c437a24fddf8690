"""The runs of an experiment: one training per (variant, seed), written to a run file as it
ends, resumed after any interruption, checked against the settings, code and seeds it was
made with (:func:`compare`; the command is :mod:`recbole_umi.experiments.compare`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from logging import getLogger
from pathlib import Path

import yaml

from recbole_umi.checkpoint import CheckpointError, read_checkpoint, rebuild_settings
from recbole_umi.experiments.run_files import checkpoint_root, finished_runs, given_settings, run_file
from recbole_umi.experiments.trials import SEARCH_SEED_COMMENT
from recbole_umi.experiments.variants import check_variants, resolve_variant
from recbole_umi.files import DamagedFileError, read_json, record_json, run_lock, set_aside, write_atomic
from recbole_umi.provenance import check_same_code, code_records, code_version, machine
from recbole_umi.quick_start import run
from recbole_umi.settings import SettingsError

__all__ = [
    "SettingsMismatchError",
    "SearchSeedError",
    "MissingRunsError",
    "given_settings",
    "run_settings",
    "comparable",
    "run_file",
    "checkpoint_root",
    "run_checkpoint_dir",
    "epochs_text",
    "interrupted_run",
    "RunClock",
    "search_seeds",
    "check_search_seeds",
    "finished_runs",
    "check_finished_runs",
    "check_run_code",
    "set_aside_damaged_runs",
    "check_comparison",
    "compare",
    "POLICY_FLAGS",
    "add_policy_arguments",
    "policy",
]

# The command-line flags that relax a comparison's checks or skip its training, shared by
# compare, noise and sweep: name -> help.
POLICY_FLAGS = {
    "allow_mixed_code": "put runs of different code versions in one table (the table lists them)",
    "table_only": "train nothing: make the table from the runs on disk, or fail naming the missing ones",
    "allow_search_seed": "allow a seed that trained the search choosing a variant's settings (best.yaml names it)",
}


def add_policy_arguments(parser, names=tuple(POLICY_FLAGS)) -> None:
    """Add the :data:`POLICY_FLAGS` ``names`` to an argparse ``parser`` (each True or False)."""
    for name in names:
        parser.add_argument(f"--{name}", default="False", choices=("True", "False"), help=POLICY_FLAGS[name])


def policy(args) -> dict[str, bool]:
    """The policy flags ``args`` (parsed by a parser given :func:`add_policy_arguments`) holds."""
    return {name: getattr(args, name) == "True" for name in POLICY_FLAGS if hasattr(args, name)}


# Settings that say where things live or what is printed, not what a run computes: a
# comparison may resume with them changed.
_PLACE_SETTINGS = {"data_path", "checkpoint_dir", "show_progress", "state", "gpu_id", "use_gpu"}


class SettingsMismatchError(ValueError):
    """A finished run in the output folder was made with other settings than this comparison."""


def run_settings(config_file_list=None, config_dict=None) -> dict:
    """What a comparison's runs are made with: :func:`given_settings` less the
    :data:`_PLACE_SETTINGS`; stored with each run and checked on resume."""
    settings = given_settings(config_file_list, config_dict)
    return {key: value for key, value in sorted(settings.items()) if key not in _PLACE_SETTINGS}


def comparable(settings: dict | None) -> dict | None:
    """Settings with command-line strings read as YAML, so ``"1024"`` equals ``1024``."""
    if settings is None:
        return None
    readable = {}
    for key, value in settings.items():
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                pass
        readable[key] = value
    return readable


def check_finished_runs(out: Path, jobs, dataset: str, settings_of: dict, records: dict | None = None) -> None:
    """Fail, before anything trains, if a finished run of ``jobs`` in ``out`` was made on
    another dataset or with other settings than ``settings_of[variant]``. ``records``: the
    :func:`finished_runs` already read."""
    records = finished_runs(out, jobs) if records is None else records
    for (variant, seed), record in records.items():
        settings = settings_of[variant]
        path = run_file(out, variant, seed)
        if record.get("dataset", dataset) != dataset:
            raise SettingsMismatchError(
                f"{path} was run on the dataset {record['dataset']!r}, this comparison is on {dataset!r}: "
                "use another --out"
            )
        if comparable(record.get("settings")) != comparable(settings):
            raise SettingsMismatchError(
                f"{path} was run with the settings {record.get('settings')}, this comparison has {settings}: "
                "use another --out, or delete that file to run it again"
            )


def epochs_text(record: dict) -> str:
    """``"25 epochs, best 18"`` for a run's or trial's record (``"no validation"`` without a best epoch)."""
    best = "no validation" if record["best_epoch"] is None else f"best {record['best_epoch']}"
    return f"{record['epochs']} epochs, {best}"


def run_checkpoint_dir(out: Path, variant: str, seed: int, files: list[str], config_dict: dict | None) -> Path:
    """Where the run of ``variant`` with ``seed`` in the comparison ``out`` keeps its checkpoints."""
    return checkpoint_root(out, "compare", files, config_dict) / run_file(out, variant, seed).stem


def interrupted_run(folder: Path, settings: dict, log=print) -> Path | None:
    """The newest ``-last`` checkpoint in ``folder`` if it was made with ``settings`` (a
    run to continue), else None."""
    candidates = sorted(folder.glob("*-last.pth"), key=lambda path: path.stat().st_mtime) if folder.is_dir() else []
    if not candidates:
        return None
    last = candidates[-1]
    try:
        saved = read_checkpoint(last)
    except CheckpointError as error:
        log(f"  {last} cannot be read ({error}); the run starts afresh")
        return None
    config = rebuild_settings(saved["config"])  # the settings in the form they are given
    wanted = comparable(settings)
    made = comparable({key: config[key] for key in wanted if key in config})
    differ = sorted(key for key, value in made.items() if value != wanted[key])
    if differ:
        log(f"  {last} was made with another {', '.join(differ)}; the run starts afresh")
        return None
    return last


class RunClock:
    """The seconds a run (a comparison's run, a search's trial) takes over all its parts, and
    the code and machine of each part. A run cut short (a session's end) and continued from its
    checkpoint would otherwise report its last part only, and only the code that finished it:
    its time so far and its parts are kept in ``elapsed.json`` in its checkpoint folder,
    written at the start, every ``every`` seconds while it trains (a killed process loses at
    most that much) and when it stops, and read back when the run continues (``resumed``); a
    run that starts afresh starts from zero. ``complete``: False where a continued run found
    no earlier time to add (cut short by code that kept none, or an unreadable file), so that
    its seconds are its last part's only. ``parts``: ``[{"seconds", "code", "machine"}]``, one
    per part in order (:func:`recbole_umi.provenance.code_version`, :func:`~recbole_umi.
    provenance.machine`); the earlier parts of a file that kept only the time are one part
    with None for its code and machine. Keeping the time is bookkeeping: a file that cannot
    be written is logged and never fails the run."""

    FILE = "elapsed.json"

    def __init__(self, folder, resumed: bool, every: float = 60.0):
        self.path = Path(folder) / self.FILE
        earlier, self._earlier_parts = self._earlier() if resumed else (0.0, [])
        self.complete = earlier is not None
        self.before = earlier or 0.0
        self._this_part = {"code": code_version(), "machine": machine()}
        self.started, self._stopped_at = time.perf_counter(), None
        self._write(self.seconds())
        self._stopped = threading.Event()
        self._writer = threading.Thread(target=self._keep, args=(every,), daemon=True)
        self._writer.start()

    def _earlier(self) -> tuple[float | None, list[dict]]:
        try:
            kept = json.loads(self.path.read_text())
            seconds = float(kept["elapsed_s"])
        except (OSError, ValueError, KeyError, TypeError):  # none kept, or unreadable
            return None, []
        parts = kept.get("parts")
        if not isinstance(parts, list):  # kept by code that recorded the time alone
            parts = [{"seconds": round(seconds, 1), "code": None, "machine": None}] if seconds else []
        return seconds, parts

    @property
    def parts(self) -> list[dict]:
        """The run's parts so far, this one last with its seconds so far."""
        this = round(self.seconds() - self.before, 1)
        return [*self._earlier_parts, {"seconds": this, **self._this_part}]

    def seconds(self) -> float:
        """The run's seconds over all its parts so far (fixed once the clock stops)."""
        return self.before + (self._stopped_at or time.perf_counter()) - self.started

    def _write(self, seconds: float) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps({"elapsed_s": round(seconds, 1), "parts": self.parts}) + "\n")
        except OSError as error:
            getLogger().warning(f"{self.path}: the run's time so far is not kept ({error})")

    def _keep(self, every: float) -> None:
        while not self._stopped.wait(every):
            self._write(self.seconds())

    def stop(self) -> float:
        """Stop keeping the time; the run's seconds over all its parts (kept for a next part)."""
        self._stopped.set()
        self._writer.join()
        self._stopped_at = time.perf_counter()
        self._write(self.seconds())
        return self.seconds()


class SearchSeedError(SettingsError):
    """A seed of the comparison is the training seed of the search that chose a variant's settings."""


# the line tune writes into best.yaml
_SEARCH_SEED = re.compile("^" + re.escape(SEARCH_SEED_COMMENT) + r"(\d+)")


def search_seeds(files: list[str]) -> dict[int, str]:
    """``{seed: file}``: the training seeds of the searches whose ``best.yaml`` is among ``files``."""
    found = {}
    for name in files:
        for line in Path(name).read_text().splitlines():
            match = _SEARCH_SEED.match(line)
            if match:
                found[int(match.group(1))] = name
    return found


def check_search_seeds(files_of: dict[str, list[str]], seeds, allow: bool = False) -> None:
    """Refuse (:class:`SearchSeedError`) a seed that trained the search trials which chose a
    variant's settings: that seed's runs won the search, so a table on it compares against a
    winner's curse. ``allow``: make such a table anyway (an old table, say)."""
    if allow:
        return
    for variant, files in files_of.items():
        clash = {seed: name for seed, name in search_seeds(files).items() if seed in seeds}
        for seed, name in clash.items():
            raise SearchSeedError(
                "seeds", list(seeds),
                f"must not include {seed}: {variant}'s settings ({name}) were chosen by a search whose trials trained "
                "with that seed. Use other seeds, or --allow_search_seed=True for a table that knowingly includes it",
            )


def check_comparison(variants, dataset, seeds, out, config_file_list=None, config_dict=None,
                     variant_files: dict[str, list[str]] | None = None, allow_mixed_code: bool = False,
                     allow_search_seed: bool = False):
    """What :func:`compare` checks before its first run, without running anything: every
    variant and its settings (:func:`check_variants`), that the runs already in ``out``
    were made with these settings (:class:`SettingsMismatchError` if not) and, unless
    ``allow_mixed_code``, with the code that would make the missing ones
    (:class:`recbole_umi.provenance.MixedCodeError` if not). Returns each variant's config
    files, the jobs ``(variant, seed)`` seed by seed, and each variant's settings as its run
    files record them."""
    check_listed_once("models", variants, "each model is one column of the table")
    check_listed_once("seeds", seeds, "each seed is one run, counted once in the mean and the test")
    variant_files = variant_files or {}
    set_aside_damaged_runs(Path(out), [(v, seed) for seed in seeds for v in variants])
    files_of = {v: [*(config_file_list or []), *variant_files.get(v, [])] for v in variants}
    check_variants(variants, dataset, files_of, config_dict)  # now, not hours later when a run would start
    check_search_seeds(files_of, seeds, allow_search_seed)
    jobs = [(variant, seed) for seed in seeds for variant in variants]
    # JSON round trip, so that the settings compare equal to those read back from disk
    settings_of = {v: json.loads(json.dumps(run_settings(files_of[v], config_dict))) for v in variants}
    records = finished_runs(Path(out), jobs)
    check_finished_runs(Path(out), jobs, dataset, settings_of, records)
    check_run_code(Path(out), jobs, allow_mixed_code, records)
    return files_of, jobs, settings_of


def check_listed_once(name: str, values, why: str) -> None:
    """:class:`SettingsError` for ``--<name>`` listing a value twice (``--seeds=1,1`` made one
    run and counted it twice: a mean of two with no spread)."""
    repeated = sorted({str(v) for v in values if list(values).count(v) > 1})
    if repeated:
        raise SettingsError(name, list(values), f"lists {', '.join(repeated)} more than once: {why}")


def set_aside_damaged_runs(out: Path, jobs, log=print) -> None:
    """A run file of ``jobs`` that is not JSON (cut short by a crash before writes were
    atomic, or edited) is renamed to ``<name>.damaged`` with a line saying so, and its run is
    made again."""
    for variant, seed in jobs:
        path = run_file(out, variant, seed)
        if not path.exists():
            continue
        try:
            read_json(path)
        except DamagedFileError as error:
            kept = set_aside(path)
            log(f"{error}: set aside as {kept.name}; the run is made again")


def check_run_code(out: Path, jobs, allow_mixed_code: bool = False, records: dict | None = None) -> None:
    """Refuse (:class:`recbole_umi.provenance.MixedCodeError`) to add runs of this code to
    finished runs of ``jobs`` made with other code, or to tabulate finished runs of
    several codes, unless ``allow_mixed_code``. ``records``: the :func:`finished_runs`
    already read."""
    records = finished_runs(out, jobs) if records is None else records
    codes = []
    for variant, seed in jobs:
        name = f"{variant} seed {seed}"
        if (variant, seed) in records:
            codes += code_records(name, records[variant, seed])
        else:
            codes.append({"name": f"{name} (to run now)", "code": code_version()})
    check_same_code(codes, f"the comparison in {out}", allow_mixed_code)


class MissingRunsError(FileNotFoundError):
    """``table_only``: a run the table needs is not on disk."""


def compare(variants, dataset, seeds, out, config_file_list=None, config_dict=None, log=print,
            variant_files: dict[str, list[str]] | None = None, allow_mixed_code: bool = False,
            table_only: bool = False, allow_search_seed: bool = False) -> dict:
    """Run every variant with every seed, seed by seed (every variant's first seed before
    any second one: a comparison cut short is complete for its first seeds), skipping runs
    already on disk; returns ``{variant: [run record per seed]}``. A variant's own settings
    and the seed override ``config_dict``, which overrides ``variant_files[variant]`` (that
    variant's YAML files, e.g. its tuned ``best.yaml``), which override ``config_file_list``.
    ``table_only``: train nothing; :class:`MissingRunsError` naming the runs not on disk."""
    files_of, jobs, settings_of = check_comparison(variants, dataset, seeds, out, config_file_list, config_dict,
                                                   variant_files, allow_mixed_code, allow_search_seed)
    out = Path(out)
    missing = [f"{variant} seed {seed}" for variant, seed in jobs if not run_file(out, variant, seed).exists()]
    if table_only and missing:
        raise MissingRunsError(f"--table_only: {len(missing)} run(s) are not in {out / 'runs'}: {', '.join(missing)}")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    done_here = 0

    def make(number: int, variant: str, seed: int) -> None:
        nonlocal done_here
        path = run_file(out, variant, seed)
        model, overrides = resolve_variant(variant)
        checkpoints = run_checkpoint_dir(out, variant, seed, files_of[variant], config_dict)
        resume = interrupted_run(checkpoints, {**settings_of[variant], "seed": seed}, log)
        if resume is None:
            log(f"[{number}/{len(jobs)}] {variant} seed {seed}: training ...")
        else:
            log(f"[{number}/{len(jobs)}] {variant} seed {seed}: continuing the interrupted run from {resume} ...")
        settings = {**(config_dict or {}), **overrides, "seed": seed, "checkpoint_dir": str(checkpoints)}
        clock = RunClock(checkpoints, resumed=resume is not None)
        try:
            result = run(model, dataset, files_of[variant], settings, saved=True,
                         resume=None if resume is None else str(resume))
        finally:
            seconds = clock.stop()
        record = {
            "variant": variant,
            "model": model,
            "dataset": dataset,
            "seed": seed,
            "eval_protocol": result["eval_protocol"],
            "overrides": overrides,
            "settings": settings_of[variant],
            "wall_s": round(seconds, 1),  # over all its parts (RunClock) where wall_s_all_parts
            "wall_s_all_parts": clock.complete,
            "code": code_version(),  # the code that ran it (a resumed run: the code that finished it)
            "parts": clock.parts,  # each part's seconds, code and machine (a run over several sessions)
            "resumed_from": None if resume is None else str(resume),
            "epochs": result["epochs"],
            "best_epoch": result["best_epoch"],
            "best_valid_result": {k: float(v) for k, v in result["best_valid_result"].items()},
            "test_result": {k: float(v) for k, v in result["test_result"].items()},
            # each test user's metrics, for the paired tests (rounded: JSON size)
            "interest_diagnostics": result["interest_diagnostics"],
            "test_per_user": _rounded(result["test_per_user"]),
        }
        if result.get("history_curve"):  # eval_history_curve: the model with each held-out user's first k items
            record["history_curve"] = {k: {**point, "test_per_user": _rounded(point["test_per_user"])}
                                       for k, point in result["history_curve"].items()}
        if result.get("unseen"):  # also_exclude_history: the model with each user's history left out
            record["unseen"] = {**result["unseen"], "test_per_user": _rounded(result["unseen"]["test_per_user"])}
        write_atomic(path, record_json(record))  # whole or absent
        done_here += 1
        elapsed = time.perf_counter() - began
        remaining = sum(not run_file(out, v, s).exists() for v, s in jobs)
        log(
            f"[{number}/{len(jobs)}] {variant} seed {seed}: done in {record['wall_s']:.0f}s "
            f"({epochs_text(record)}); about {elapsed / done_here * remaining / 60:.0f} min left"
        )

    # A run another process is making (its lock is held) is left to it and waited for at the
    # end; if that process dies first, this one makes the run.
    elsewhere = []
    for number, (variant, seed) in enumerate(jobs, 1):
        path = run_file(out, variant, seed)
        if path.exists():
            log(f"[{number}/{len(jobs)}] {variant} seed {seed}: already done ({path.name})")
            continue
        with run_lock(path) as mine:
            if not mine:
                log(f"[{number}/{len(jobs)}] {variant} seed {seed}: another process is making it; this one goes on")
                elsewhere.append((number, variant, seed))
            elif not path.exists():  # not finished by another process meanwhile
                make(number, variant, seed)
    for number, variant, seed in elsewhere:
        path = run_file(out, variant, seed)
        log(f"[{number}/{len(jobs)}] {variant} seed {seed}: waiting for the other process's run ...")
        while not path.exists():
            with run_lock(path) as mine:
                if mine and not path.exists():  # the other process ended without it
                    make(number, variant, seed)
            if not path.exists():
                time.sleep(LOCK_POLL_S)
    # runs another process made after the checks above: the same checks before they are tabulated
    records = finished_runs(out, jobs)
    check_finished_runs(out, jobs, dataset, settings_of, records)
    check_run_code(out, jobs, allow_mixed_code, records)
    results: dict[str, list] = {variant: [] for variant in variants}
    for variant, seed in jobs:
        results[variant].append(records[variant, seed])
    return results


def _rounded(per_user: dict) -> dict:
    """Per-user metrics rounded to 6 digits (JSON size); the users and history lengths as they are."""
    return {k: v if k in ("user", "history_length") else [round(float(x), 6) for x in v] for k, v in per_user.items()}


# Seconds between looks at a run another process is making.
LOCK_POLL_S = 30
