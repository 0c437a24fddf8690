"""Where a finished search's chosen settings sit on the edge of their space, and that space
widened past them, for the search's next stage (the "beyond SASRec" issue: a chosen setting
on the edge of its range widens the range, and the search resumes).

    python scripts/search_edges.py results/search/ml-1m/YoutubeDNN [...] --after=16

For each search folder (``python -m recbole_umi.tune``'s ``--out``) with at least ``--after``
finished trials it takes the best of the first ``--after`` (by validation, as ``tune``
chooses), finds its edges (:func:`recbole_umi.experiments.params_file.edges`: a choice of
increasing numbers at its first or last value, a range within a tenth of its width of an
end) and writes ``<folder>/widened.hyper``: the search's current space, widened one step past
each edge (:func:`~recbole_umi.experiments.params_file.widened`), the same space where none
(run again once the search has been widened, it writes the same file: it widens the space
the first ``--after`` trials drew from). One widening only: a setting chosen on the edge of
the widened space stays there (the results say so).
``tune`` resumes the search in it with a larger ``--max_evals`` (``scripts/search_ml1m.sh``'s
widening stage). Prints a markdown table of the edges. ``n_negatives`` has no edge: the
widening of its largest count, the full softmax, is in every space already.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.experiments.params_file import edges, params_file_text, widened  # noqa: E402
from recbole_umi.experiments.trials import best_trial  # noqa: E402
from recbole_umi.files import write_atomic  # noqa: E402

# the lowest and highest values a widening may reach (their settings refuse a dropout below 0
# or of 1, a K below 1). T stays within the 10-50, for every model alike: the step
# past 50 (125) would make an epoch of RecBole's SASRec 2.8-3.9x longer than at 50 (a row's
# arithmetic), about 48 stream-hours for the two trials of its widening that would draw it
# (results/search/ml-1m/README.md, "T stays at 50 at most").
LIMITS = {"hidden_dropout_prob": (0.0, 0.9), "attn_dropout_prob": (0.0, 0.9), "n_interests": (1, None),
          "interest_size": (1, None), "MAX_ITEM_LIST_LENGTH": (10, 50)}
SKIP = ("n_negatives",)


class UnfinishedSearchError(ValueError):
    """A search folder holds fewer finished trials than the stage before the widening."""


def at_limit(space: dict, wider: dict, ends: dict[str, str]) -> list[str]:
    """The names on an edge that :data:`LIMITS` kept from widening (widened without limits,
    they would have changed)."""
    return [name for name, end in ends.items() if list(wider[name][1]) == list(space[name][1])
            and list(widened(space, {name: end})[name][1]) != list(space[name][1])]


def widen(folder: Path, after: int) -> tuple[dict, dict[str, str], dict, list[str]]:
    """``(best trial of the first after, its edges, the widened space, the edges its limits
    kept)``; writes ``folder/widened.hyper``."""
    trials = [json.loads(p.read_text()) for p in sorted((folder / "trials").glob("*.json"))]
    if len(trials) < after:
        raise UnfinishedSearchError(f"{folder}: {len(trials)} of {after} trials finished; widen it when all have")
    record = json.loads((folder / "tuning.json").read_text())
    # the space the first trials drew from: once widened, the one before (run again, the same file)
    stages = [stage for stage in record.get("widened_from", []) if stage["trials"] >= after]
    space = (stages[0] if stages else record)["space"]
    best = best_trial(trials[:after])
    ends = edges(space, best["params"], skip=SKIP)
    wider = widened(space, ends, LIMITS)
    kept = at_limit(space, wider, ends)
    described = ", ".join(f"{name} {end}" + (" (kept: its limit)" if name in kept else "")
                          for name, end in ends.items())
    header = (f"# {folder.name}'s search space after trial {after}, widened past the edges of trial {best['trial']}'s "
              f"settings (scripts/search_edges.py): {described or 'none'}\n")
    write_atomic(folder / "widened.hyper", header + params_file_text(wider))
    return best, ends, wider, kept


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--after", type=int, default=16, help="the trials of the stage before the widening")
    args = parser.parse_args(argv)
    print("| search | chosen trial | on the edge | widened to |")
    print("| --- | --- | --- | --- |")
    for folder in args.folders:
        try:
            best, ends, wider, kept = widen(folder, args.after)
        except (UnfinishedSearchError, FileNotFoundError) as error:
            sys.exit(f"search_edges.py: {error}")
        shown = "; ".join(f"{name} = {best['params'][name]} ({end})" for name, end in ends.items()) or "none"
        changes = "; ".join(f"{name} {wider[name][1]}" + (" (kept: its limit)" if name in kept else "")
                            for name in ends) or "-"
        print(f"| {folder.name} | {best['trial']} | {shown} | {changes} |")


if __name__ == "__main__":
    main()
