"""The tables of an experiment from its run files: means and spreads over seeds in the paper's
layout, the tests of the first model against each other one (:mod:`recbole_umi.stats`),
the interest diagnostics, the breakdown by history length, the code the runs ran.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from recbole_umi import stats
from recbole_umi.experiments.run_files import same_users
from recbole_umi.files import write_csv_atomic
from recbole_umi.metrics import metric_columns, recbole_metric_name
from recbole_umi.provenance import code_listing, code_records

__all__ = [
    "mean_std",
    "run_protocol",
    "summarise",
    "best_other",
    "improvement",
    "per_seed_users",
    "run_means",
    "table_test",
    "significance",
    "history_buckets",
    "render_history_breakdown",
    "render_significance",
    "render_markdown",
    "render_diagnostics",
    "render_code",
    "write_csv",
    "write_tests_csv",
    "interval_text",
]


def interval_text(value: float, low: float, high: float, signed: bool = False) -> str:
    """``"14.17 [13.47, 14.86]"``: a figure and its 95% interval in the tables' two decimals;
    ``signed`` (a difference): ``"+0.23 [-0.25, +0.71]"``."""
    form = "+.2f" if signed else ".2f"
    return f"{value:{form}} [{low:{form}}, {high:{form}}]"


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (0 for a single seed)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def run_protocol(record: dict) -> str:
    """The evaluation protocol of a run record; records made before it was stored are all
    from the dataset configs' user_split (the paper's)."""
    return record.get("eval_protocol", "user_split")


def run_test_metrics(record: dict) -> dict:
    """A run's test metrics (RecBole's names), each the mean over its test users where the
    run kept them: RecBole's own ``test_result`` is rounded to 4 decimals
    (``metric_decimal_place``), coarser than the tables print and than the tests of
    :func:`significance` use; RecBole's value where the run has no per-user results."""
    per_user = record.get("test_per_user", {})
    return {name: float(np.mean(per_user[name])) if name in per_user else value
            for name, value in record["test_result"].items()}


def summarise(results: dict) -> tuple[list[str], dict]:
    """Columns (the paper's metric names under user_split, else RecBole's:
    :func:`recbole_umi.metrics.metric_columns`) and ``{variant: {column: (mean %, std %)}}``
    of the runs' :func:`run_test_metrics`."""
    columns: list[str] = []
    table = {}
    for variant, runs in results.items():
        per_run = [metric_columns(run_test_metrics(r), run_protocol(r)) for r in runs]
        for name in per_run[0]:
            if name not in columns:
                columns.append(name)
        table[variant] = {}
        for name in per_run[0]:
            values = [100 * r[name] for r in per_run]
            table[variant][name] = mean_std(values)
    columns.sort(key=lambda c: (int(c.split("@")[1]), c.split("@")[0] not in ("HitRate", "recall")))
    return columns, table


def _ranks(table: dict, column: str) -> tuple[str | None, str | None]:
    ordered = sorted(table, key=lambda v: table[v][column][0], reverse=True)
    return ordered[0], ordered[1] if len(ordered) > 1 else None


def best_other(table: dict, column: str) -> str | None:
    """The variant after the first with the best mean in ``column`` (None: only one)."""
    others = list(table)[1:]
    return max(others, key=lambda v: table[v][column][0]) if others else None


def improvement(table: dict, column: str) -> float | None:
    """Relative improvement (%) of the first variant over the best of the others."""
    other = best_other(table, column)
    if other is None:
        return None
    first, best = table[next(iter(table))][column][0], table[other][column][0]
    return 100 * (first - best) / best if best else None


def per_seed_users(runs: list[dict], metric: str) -> tuple[list[str], np.ndarray] | None:
    """The test users and their ``metric`` in each run, ``runs x users``; None where a run
    lacks per-user results (made before they were kept)."""
    if not all("test_per_user" in r for r in runs):
        return None
    users = runs[0]["test_per_user"]["user"]
    for r in runs[1:]:
        if r["test_per_user"]["user"] != users:
            raise ValueError(f"{r['variant']} seed {r['seed']} was tested on other users than seed {runs[0]['seed']}")
    return users, np.array([r["test_per_user"][metric] for r in runs], dtype=float)


def run_means(runs: list[dict], metric: str) -> list[float]:
    """Each run's ``metric`` averaged over its test users."""
    return [float(np.mean(r["test_per_user"][metric])) for r in runs]


def table_test(results: dict, test: str = "two_level") -> str:
    """The test a table gets: ``test``, except that the two-level test needs two seeds or
    more of every model (the seeds' spread is measured from them): with fewer, the paired
    t-test over the users, which the table then says does not count the seeds' spread."""
    if test == "two_level" and min(len(runs) for runs in results.values()) < 2:
        return "ttest"
    return test


def significance(results: dict, columns: list[str], test: str = "two_level") -> dict | None:
    """``{other variant: {column: test}}`` in percentage points, the first variant against
    each other one: with ``two_level`` (:func:`recbole_umi.stats.two_level_test`) over the
    test users and the training seeds; with ``ttest`` or ``wilcoxon``
    (:func:`recbole_umi.stats.paired_test`) over the test users, each user's metric averaged
    over the seeds, and then also ``p_seeds``, Welch's t-test of the seeds' means (None with
    fewer than 2 seeds). Each test holds ``p_holm``, its p-value adjusted (:func:`holm`) for
    the comparisons with every other variant on the same metric. None if some run has no
    per-user results. Call :func:`table_test` first: ``two_level`` needs 2 seeds a model."""
    if test not in stats.TESTS:
        raise ValueError(f"test must be one of {tuple(stats.TESTS)}, got {test!r}")
    variants = list(results)
    tests = {}
    for other in variants[1:]:
        tests[other] = {}
        for column in columns:
            metric = recbole_metric_name(column)
            first, second = per_seed_users(results[variants[0]], metric), per_seed_users(results[other], metric)
            if first is None or second is None:
                return None
            if first[0] != second[0]:
                raise ValueError(f"{variants[0]} and {other} were tested on other users: not the same split")
            if test == "two_level":
                result = stats.two_level_test(100 * first[1], 100 * second[1])
                if result is None:
                    raise ValueError(f"the two-level test needs 2 seeds or more of {variants[0]} and {other}")
            else:
                result = stats.paired_test(100 * first[1].mean(axis=0), 100 * second[1].mean(axis=0), test)
                result["p_seeds"] = stats.seed_test(run_means(results[variants[0]], metric),
                                                    run_means(results[other], metric))
            tests[other][column] = result
    for column in columns:
        adjusted = stats.holm([tests[other][column]["p"] for other in tests])
        for other, p_holm in zip(tests, adjusted):
            tests[other][column]["p_holm"] = p_holm
    return tests


def history_buckets(lengths, n_buckets: int) -> list[tuple[int, int]]:
    """``n_buckets`` ranges ``(low, high)`` of history lengths (inclusive) at the quantiles
    of ``lengths``, fewer where lengths repeat; every length falls in one."""
    lengths = np.asarray(lengths)
    cuts = np.unique(np.quantile(lengths, np.linspace(0, 1, n_buckets + 1)[1:-1], method="lower"))
    lows = [int(lengths.min()), *[int(c) + 1 for c in cuts]]
    highs = [*[int(c) for c in cuts], int(lengths.max())]
    return [(low, high) for low, high in zip(lows, highs) if low <= high]


def render_history_breakdown(results: dict, column: str, n_buckets: int) -> str | None:
    """The test ``column`` (a paper name, HitRate@50) of every variant per quantile bucket of
    the test users' history length (before the model's last-T cut): mean [95% two-level
    interval], then the first variant minus each other one per bucket with the two-level
    test (Holm over the comparisons in a bucket). None where runs lack history lengths (made
    before 2026-12-03) or per-user results."""
    metric = recbole_metric_name(column)
    variants = list(results)
    if not all("history_length" in r.get("test_per_user", {}) for runs in results.values() for r in runs):
        return None
    same_users(*results.values())  # the first run's lengths and buckets are every run's
    lengths = np.array(results[variants[0]][0]["test_per_user"]["history_length"])
    buckets = history_buckets(lengths, n_buckets)
    values = {v: per_seed_users(results[v], metric)[1] * 100 for v in variants}
    names = [f"{low}-{high} ({int(((lengths >= low) & (lengths <= high)).sum())} users)" for low, high in buckets]
    lines = [f"Test {column} by the test users' history length (items before the first target, before the model's "
             f"last-T cut), in {len(buckets)} quantile buckets: mean in percent [95% two-level interval over the "
             "bucket's users and the seeds; the mean alone with one seed].", "",
             "| model | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(buckets)]
    for variant in variants:
        cells = []
        for low, high in buckets:
            users = (lengths >= low) & (lengths <= high)
            mean = stats.two_level_mean(values[variant][:, users]) if users.sum() >= 2 else None
            cells.append(f"{values[variant][:, users].mean():.2f}" if mean is None else
                         interval_text(mean["mean"], mean["low"], mean["high"]))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    if len(variants) > 1 and min(len(runs) for runs in results.values()) >= 2:
        lines += ["", f"{variants[0]} minus each model per bucket, in points [95% two-level interval], p; † below "
                  f"{stats.LEVEL} after Holm's correction over the {len(variants) - 1} comparison(s) in the bucket.", "",
                  f"| {variants[0]} vs | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(buckets)]
        cells = {v: [] for v in variants[1:]}
        for low, high in buckets:
            users = (lengths >= low) & (lengths <= high)
            if users.sum() < 2:  # one user: no spread over users to test against
                for v in variants[1:]:
                    cells[v].append("- (1 user)")
                continue
            found = {v: stats.two_level_test(values[variants[0]][:, users], values[v][:, users]) for v in variants[1:]}
            for v, p_holm in zip(found, stats.holm([t["p"] for t in found.values()])):
                t = found[v]
                cells[v].append(f"{interval_text(t['delta'], t['low'], t['high'], signed=True)} p={t['p']:.2g}"
                                + ("†" if p_holm < stats.LEVEL else ""))
        lines += [f"| {v} | " + " | ".join(row) + " |" for v, row in cells.items()]
    return "\n".join(lines) + "\n"


def render_significance(tests: dict, columns: list[str], first: str, n_users: int, test: str,
                        n_seeds: int | None = None) -> str:
    level = stats.LEVEL
    if test == "two_level":
        caption = (
            f"Two-level test of {first} against each model over the {n_users} test users and the training seeds "
            "(recbole_umi.stats.two_level_test: both the test users and the seeds count as samples, so the "
            "interval is as wide as a rerun with other seeds and users could move the difference): difference "
            f"in points, its 95% interval, p-value; * p < {level}; † also below {level} after Holm's correction "
            f"for the {len(tests)} comparison(s) on each metric."
        )
    else:
        caption = (
            f"{stats.TESTS[test].capitalize()} of {first} against each model (each user's metric averaged over the "
            f"seeds; the {n_users} test users are the samples): difference in points, its 95% confidence interval"
            + (" (the t-interval of the mean difference, which may exclude 0 where Wilcoxon's p does not fall below "
               f"{level}, or the reverse)" if test == "wilcoxon" else "")
            + f", p-value; * p < {level}; † also below {level} after Holm's correction for the {len(tests)} "
            "comparison(s) on each metric. This test does not count how much a model moves from one training "
            "seed to the next" + (" (one seed: that spread cannot be measured)" if n_seeds == 1 else "")
            + ". \"seeds p\": Welch's t-test of the seeds' means, which counts the spread between training seeds "
            "and not between test users (2 seeds or more; not corrected)."
        )
    lines = [caption, "", f"| {first} vs | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for other, row in tests.items():
        cells = []
        for column in columns:
            t = row[column]
            star = "*" if t["p"] < level else ""
            star += "†" if t["p_holm"] < level else ""
            seeds = "" if t.get("p_seeds") is None else f"; seeds p={t['p_seeds']:.3g}"
            cells.append(f"{interval_text(t['delta'], t['low'], t['high'], signed=True)} p={t['p']:.3g}{star}{seeds}")
        lines.append(f"| {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(columns: list[str], table: dict, n_seeds: int, tests: dict | None = None) -> str:
    lines = [
        f"Test metrics in percent, mean ± std over {n_seeds} seed(s); **best**, _second best_; "
        f"▲% = relative improvement of {next(iter(table))} over the best other model"
        + (f", * where the test below gives p < {stats.LEVEL} against that model, † also after Holm's "
           f"correction." if tests else "."),
        "",
        "| model | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    marks = {column: _ranks(table, column) for column in columns}
    for variant, row in table.items():
        cells = []
        for column in columns:
            mean, std = row[column]
            cell = f"{mean:.3f} ± {std:.3f}"
            best, second = marks[column]
            cell = f"**{cell}**" if variant == best else f"_{cell}_" if variant == second else cell
            cells.append(cell)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    gains = [improvement(table, column) for column in columns]
    if any(g is not None for g in gains):
        cells = []
        for column, gain in zip(columns, gains):
            star = ""
            if tests:
                test = tests[best_other(table, column)][column]
                star = ("*" if test["p"] < stats.LEVEL else "") + ("†" if test["p_holm"] < stats.LEVEL else "")
            cells.append("" if gain is None else f"{gain:+.2f}{star}")
        lines.append("| ▲% | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_diagnostics(results: dict) -> str | None:
    """The interest diagnostics of the multi-interest variants (:func:`recbole_umi.evaluation.
    interest_diagnostics`), mean ± std over seeds; None if no run has any."""
    def spread(values):
        return "-" if any(v is None for v in values) else "{:.3f} ± {:.3f}".format(*mean_std(values))

    lines = []
    for variant, runs in results.items():
        found = [r["interest_diagnostics"] for r in runs if r.get("interest_diagnostics")]
        if not found:
            continue
        shares = [d["routing_share"] for d in found]
        routed = not any(s is None for s in shares)
        share = " / ".join(f"{v:.2f}" for v in np.mean(shares, axis=0)) if routed else "-"
        lines.append(f"| {variant} | {len(shares[0]) if routed else '-'} | "
                     f"{spread([d['interest_cosine'] for d in found])} | "
                     f"{spread([d['routing_overlap'] for d in found])} | {share} | "
                     f"{spread([d.get('routing_by_position') for d in found])} |")
    if not lines:
        return None
    return "\n".join([
        "Interest diagnostics on the test users, mean ± std over the seeds: the mean cosine between two of a "
        "user's interests (near 1: near-duplicates), the routing overlap, the share of history items "
        "routed mostly to each interest, largest first, and the share routed mostly to the interest their "
        "position's random initial routing logits favour (near 1: the routing splits a history by position, "
        "not by its items; - where the routing has no such draw or the run predates the measure).",
        "",
        "| model | K | interest cosine | routing overlap | routing share | routing by position |",
        "| --- | --- | --- | --- | --- | --- |",
        *lines,
    ]) + "\n"


def write_csv(path: Path, columns: list[str], table: dict) -> None:
    rows = [["model", *[f"{c} {stat}" for c in columns for stat in ("mean", "std")]]]
    rows += [[variant, *[f"{v:.4f}" for c in columns for v in row[c]]] for variant, row in table.items()]
    write_csv_atomic(path, rows)


def render_code(results: dict, allow_mixed: bool = False) -> str:
    """The code the runs of a table ran (:mod:`recbole_umi.provenance`): one line when it is
    one version, else a list of the versions and their runs (which only ``allow_mixed``
    permits: :class:`recbole_umi.provenance.MixedCodeError` otherwise)."""
    records = [record for variant, runs in results.items() for r in runs
               for record in code_records(f"{variant} seed {r['seed']}", r)]
    return "\n".join(code_listing(records, "this table", allow_mixed)) + "\n"


def write_tests_csv(path: Path, columns: list[str], tests: dict) -> None:
    fields = ("delta", "low", "high", "p", "p_holm", "p_seeds", "df", "seed_share")
    rows = [["vs", *[f"{c} {field}" for c in columns for field in fields]]]
    for other, row in tests.items():
        rows.append([other, *("" if row[c].get(field) is None else f"{row[c][field]:.6g}"
                              for c in columns for field in fields)])
    write_csv_atomic(path, rows)
