"""The run files of an experiment folder, ``<folder>/runs/<variant>__seed<seed>.json`` (one
record a finished training, written by :mod:`recbole_umi.experiments.runs`), read back for
the tables and scripts that put runs side by side.

- :func:`run_file`: where the run of a variant and seed lives (the variant's name cleaned
  of characters a file name should not hold).
- :func:`read_runs`: the records of a variant's seeds, in seed order; a damaged file raises
  :class:`recbole_umi.files.DamagedFileError` naming it, missing ones a
  :class:`FileNotFoundError` naming every one. :func:`finished_runs`: the records of
  ``(variant, seed)`` jobs that are on disk.
- :func:`same_users`: refuses runs whose test users differ (other users, or the same in
  another order), so that per-user metrics put side by side (``seeds x users`` arrays for
  :func:`recbole_umi.stats.two_level_test`) pair each user with itself.
- :func:`checkpoint_root`: the folder where the runs of a compare or tune writing to an
  output folder keep their checkpoints (from :func:`given_settings`, the settings as given).

Light on purpose: the standard library, yaml and :mod:`recbole_umi.files` only (no RecBole, no
torch): scripts/carry_checkpoints.py finds the checkpoints with it in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from recbole_umi.files import read_json

__all__ = ["run_file", "read_runs", "finished_runs", "same_users", "given_settings", "checkpoint_root"]


def run_file(out, variant: str, seed: int) -> Path:
    """``<out>/runs/<variant>__seed<seed>.json``, each character of ``variant`` outside
    ``[A-Za-z0-9_.+-]`` replaced by ``_`` (``"UMI dropout 0.5"`` -> ``UMI_dropout_0.5``)."""
    return Path(out) / "runs" / f"{re.sub(r'[^A-Za-z0-9_.+-]', '_', variant)}__seed{seed}.json"


def read_runs(folder, variant: str, seeds: Iterable[int], existing: bool = False) -> list[dict]:
    """The run records of ``variant`` in ``folder``, one a seed of ``seeds``, in their order.

    A file that is not JSON raises :class:`recbole_umi.files.DamagedFileError` naming it.
    Missing files raise :class:`FileNotFoundError` naming every one, unless ``existing``:
    then only the runs found are returned (in seed order, perhaps none)."""
    paths = [run_file(folder, variant, seed) for seed in seeds]
    missing = [str(path) for path in paths if not path.exists()]
    if missing and not existing:
        raise FileNotFoundError(f"{variant}: no run file {', '.join(missing)}")
    return [read_json(path) for path in paths if path.exists()]


def finished_runs(out, jobs) -> dict:
    """``{(variant, seed): record}`` of the runs of ``jobs`` (``(variant, seed)`` pairs) on
    disk in ``out``, each file read once (a damaged one: :class:`recbole_umi.files.DamagedFileError`)."""
    return {(variant, seed): read_json(path) for variant, seed in jobs
            if (path := run_file(out, variant, seed)).exists()}


def same_users(*runs_lists: Sequence[dict], names: Sequence[str] | None = None) -> list:
    """The test users of the runs in ``runs_lists``, in order, after checking that every run
    has the first run's, in the same order.

    Each of ``runs_lists`` is a list of records holding ``test_per_user`` (run records, or a
    result inside them: a run's ``unseen`` entry, a point of its ``history_curve``), e.g. a
    variant's seeds. ``names``: what to call each list in an error, by default its first
    record's ``variant``. Raises :class:`ValueError` naming the two runs (list name and seed,
    or position where a record has no seed) whose users differ, or a run without per-user
    results. Returns ``test_per_user["user"]`` of the first run ([] if there is none)."""
    if names is None:
        names = [str(runs[0].get("variant", f"runs {number + 1}")) if runs else f"runs {number + 1}"
                 for number, runs in enumerate(runs_lists)]
    if len(names) != len(runs_lists):
        raise ValueError(f"{len(names)} names for {len(runs_lists)} lists of runs")
    labelled = [(_run_name(name, run, position), run) for name, runs in zip(names, runs_lists)
                for position, run in enumerate(runs)]
    for name, run in labelled:
        if "user" not in (run.get("test_per_user") or {}):
            raise ValueError(f"{name} has no per-user test results (made before they were kept)")
    if not labelled:
        return []
    (first_name, first), *others = labelled
    users = first["test_per_user"]["user"]
    for name, run in others:
        if run["test_per_user"]["user"] != users:
            raise ValueError(f"{name} and {first_name} were tested on other users (or in another order): "
                             "their per-user results cannot be paired")
    return users


def _run_name(name: str, run: dict, position: int) -> str:
    """``"UMI seed 2021"``; ``"UMI run 2"`` (the position, from 1) for a record without a seed."""
    return f"{name} seed {run['seed']}" if "seed" in run else f"{name} run {position + 1}"


def given_settings(config_file_list=None, config_dict=None) -> dict:
    """The YAML files' keys under the ``--key=value`` ones, as given (nothing resolved)."""
    settings = {}
    for name in config_file_list or []:
        settings.update(yaml.safe_load(Path(name).read_text()) or {})
    settings.update(config_dict or {})
    return settings


def checkpoint_root(out, kind: str, files: list[str], config_dict: dict | None) -> Path:
    """``<checkpoint_dir>/<kind>-<out's name>-<hash of its path>``: where the runs of the
    command (``kind``: compare, tune) writing to ``out`` keep their checkpoints, so that an
    interrupted run is found again and no two output folders share one."""
    base = given_settings(files, config_dict).get("checkpoint_dir") or "saved"
    resolved = Path(out).resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return Path(str(base)) / f"{kind}-{resolved.name}-{digest}"
