"""The settings a random search (``python -m recbole_umi.tune --algo=random``) has proposed
and will propose, trial by trial, to plan its time before the trials run.

    python scripts/search_proposals.py results/search/ml-1m/SASRec --to=20 [--space=FILE --after=16]
    python scripts/search_proposals.py results/search/ml-1m/SINE --seed=110 --space=tuning/ml-1m-search/SINE.hyper

A random search's proposal for a trial depends only on its seed and the space: ``tune``
draws one seed a proposed trial from ``RandomState(search seed)`` (skipping the defaults
trial, which no algorithm proposes) and hyperopt's ``rand.suggest`` draws the trial's
settings from it. So the proposals of trials not yet run are known now. Each trial is drawn
from the space it ran in (``tuning.json``: a trial before a widening from the space before
it), the others from the search's current space, or those after ``--after`` from ``--space``
(a params file: the space a widening after trial ``--after`` would write,
``scripts/search_edges.py``). A search not begun yet (no ``tuning.json``) is proposed from
``--space`` and ``--seed`` (``tune``'s ``--search_seed``), with the defaults as its first
trial. Prints a markdown table: each trial's proposal and, where it ran, whether its
recorded settings are that proposal.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.experiments.params_file import read_params_file  # noqa: E402


def hyperopt_space(space: dict):
    """The hyperopt space ``tune`` builds from ``{name: (kind, values)}`` (RecBole's builder)."""
    from recbole.trainer.hyper_tuning import HyperTuning

    grouped = {}
    for name, (kind, values) in space.items():
        grouped.setdefault(kind, {})[name] = values
    return HyperTuning._build_space_from_dict(grouped)


def proposal(space: dict, seed: int) -> dict:
    """The settings ``rand.suggest`` proposes from ``seed`` in ``space``."""
    from hyperopt import Domain, Trials, rand, space_eval

    built = hyperopt_space(space)
    doc = rand.suggest([0], Domain(lambda _: 0, built), Trials(), seed)[0]
    return space_eval(built, {name: values[0] for name, values in doc["misc"]["vals"].items() if values})


def space_of_trial(record: dict, trial: int, later: dict | None, after: int) -> dict:
    """The space ``trial`` was (or will be) drawn from: the first stage it ran in, else
    ``later`` for a trial after ``after`` (a widening to come), else the search's space."""
    for stage in record.get("widened_from", []):  # in order: each the space before a widening
        if trial <= stage["trials"]:
            return stage["space"]
    return later if later is not None and trial > after else record["space"]


def proposals(folder: Path, to: int, space: dict | None = None, seed: int | None = None, after: int = 16
              ) -> list[tuple[int, dict, dict | None]]:
    """``(trial, its proposal, its recorded settings or None)`` for the proposed trials up to
    ``to``, those after ``after`` from ``space`` where given (a widening to come); a search not
    begun is proposed from ``space`` and ``seed``."""
    if (folder / "tuning.json").is_file():
        record = json.loads((folder / "tuning.json").read_text())
    elif space is None or seed is None:
        raise SystemExit(f"search_proposals.py: {folder} holds no search yet (no tuning.json): give its --space and "
                         "--seed")
    else:
        record = {"algo": "random", "space": space, "seed": seed, "start_from_defaults": True}
    if record["algo"] != "random":
        raise SystemExit(f"search_proposals.py: {folder} is a {record['algo']} search: only a random search's "
                         "proposals are known before its trials run")
    ran = {trial["trial"]: trial for trial in (json.loads(p.read_text()) for p in folder.glob("trials/*.json"))}
    first = 2 if record.get("start_from_defaults", True) else 1
    seeds = np.random.RandomState(record["seed"])
    out = []
    for trial in range(first, to + 1):
        seed = seeds.randint(2**31 - 1)
        params = ran.get(trial, {}).get("params")
        out.append((trial, proposal(space_of_trial(record, trial, space, after), seed), params))
    return out


def same(proposed: dict, params: dict) -> bool:
    return proposed.keys() == params.keys() and all(
        math.isclose(v, params[k], rel_tol=1e-9) if isinstance(v, float) else v == params[k]
        for k, v in proposed.items())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the search's --out")
    parser.add_argument("--to", type=int, default=20, help="the last trial to propose")
    parser.add_argument("--space", type=Path, help="a params file for the trials after --after (a widening to come)")
    parser.add_argument("--after", type=int, default=16, help="the trials before that widening (search_edges.py's)")
    parser.add_argument("--seed", type=int, help="the search seed of a search not begun yet")
    args = parser.parse_args(argv)
    space = {name: list(spec) for name, spec in read_params_file(args.space).items()} if args.space else None
    print("| trial | proposed | ran |")
    print("| --- | --- | --- |")
    for trial, proposed, params in proposals(args.folder, args.to, space, args.seed, args.after):
        ran = "-" if params is None else ("the same" if same(proposed, params) else f"other settings: {params}")
        shown = ", ".join(f"{k} {round(v, 6) if isinstance(v, float) else v}" for k, v in sorted(proposed.items()))
        print(f"| {trial} | {shown} | {ran} |")


if __name__ == "__main__":
    main()
