"""A profile-rich synthetic benchmark: where a user's interests depend on their profile.

    python -m recbole_umi.datasets.synth OUT [--users=20000] [--items=20000] [--seed=2022] ...

writes RecBole atomic files ``OUT/<name>/<name>.inter``, ``.user`` and ``.item``, the
generator's truth (``truth.npz``, ``generator.json``) and a config with the generated
profile fields (``OUT/<name>.yaml``). Run a model on it with ``--dataset=synth
--data_path=OUT`` (``dataset_configs/synth.yaml`` mirrors the paper's Taobao setting scaled
to a small machine, for the default fields).

How users click (every knob is a :class:`SynthSpec` field and a command-line option):

1. **Items** fall into ``categories`` categories (sizes Zipf-like, exponent
   ``category_zipf``) and have a popularity (Zipf, exponent ``item_zipf``, over a random
   order of the items).
2. **Profiles**: ``token_fields`` token fields ``f01, f02, ...`` (vocabularies of
   ``vocab_min``..``vocab_max`` values, skewed) and ``float_fields`` float fields ``g01, ...``
   (standard normal). Only the first ``signal_token_fields`` token and first
   ``signal_float_fields`` float fields carry signal; a float field acts through its
   ``float_buckets`` quantile buckets. The rest are noise.
3. **Which fields matter where**: each category depends on ``fields_per_category`` of the
   signal fields (drawn at random; in ``truth.npz`` as ``relevant``), as a dress interest
   depends on gender and not on the province in the paper's example. A user's affinity to a
   category is its base popularity (log), plus ``profile_strength`` times the sum of
   preference values (standard normal, one per field value and category) of the category's
   relevant fields over the square root of their number, plus the user's own normal noise
   of s.d. ``user_noise`` (what the profile cannot explain).
4. **Interests**: each user has between ``min_interests`` and ``max_interests`` interests,
   categories drawn without replacement with probabilities ``softmax(affinity)``, with
   Dirichlet(1) weights.
5. **Histories**: lengths log-normal (median ``length_median``, log s.d. ``length_sigma``),
   clipped to ``[min_length, max_length]``: many short histories, a long tail. Each click
   keeps the previous click's interest with probability ``stay`` and otherwise draws one by
   the weights; the item is drawn by popularity within the interest's category. A share
   ``noise_clicks`` of clicks are noise: an item drawn by global popularity. A user's repeat
   of an item is dropped (so histories can end shorter than ``min_length``).

The truth knows every user's next-click distribution, ``noise * pop(i) + (1 - noise) *
sum_k w_k pop(i | c_k)``: :func:`ideal_hit_rates` ranks items by it (and by what the profile
alone or popularity alone tells) for the test users of the paper's protocol, the ceiling a
model could reach. Light: numpy only; a million interactions take a few seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recbole_umi.files import folder_whole, write_atomic

__all__ = ["SynthSpec", "generate", "profile_affinity", "write", "ideal_hit_rates", "main"]


@dataclass(frozen=True)
class SynthSpec:
    """The generator's knobs (see the module's text for what each does)."""

    name: str = "synth"
    users: int = 20_000
    items: int = 20_000
    categories: int = 50
    category_zipf: float = 0.5
    item_zipf: float = 1.0
    token_fields: int = 16
    float_fields: int = 4
    signal_token_fields: int = 5
    signal_float_fields: int = 1
    vocab_min: int = 2
    vocab_max: int = 30
    float_buckets: int = 5
    fields_per_category: int = 2
    profile_strength: float = 2.0
    user_noise: float = 0.5
    min_interests: int = 1
    max_interests: int = 5
    length_median: float = 20.0
    length_sigma: float = 1.0
    min_length: int = 3
    max_length: int = 300
    stay: float = 0.5
    noise_clicks: float = 0.1
    seed: int = 2022

    def __post_init__(self):
        problems = []
        positive = ("users", "items", "categories", "vocab_min", "float_buckets", "min_interests", "min_length")
        problems += [f"{name} must be at least 1" for name in positive if getattr(self, name) < 1]
        if self.items < self.categories:
            problems.append("items must be at least categories (every category holds an item)")
        if self.signal_token_fields > self.token_fields or self.signal_float_fields > self.float_fields:
            problems.append("signal fields must be at most the fields of their kind")
        n_signal = self.signal_token_fields + self.signal_float_fields
        if not 1 <= self.fields_per_category <= max(n_signal, 1) or n_signal == 0:
            problems.append("fields_per_category must be in [1, signal fields], and some field must carry signal")
        if self.vocab_max < self.vocab_min:
            problems.append("vocab_max must be at least vocab_min")
        if not self.min_interests <= self.max_interests <= self.categories:
            problems.append("need min_interests <= max_interests <= categories")
        if not self.min_length <= self.max_length:
            problems.append("need min_length <= max_length")
        for name in ("stay", "noise_clicks"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must be in [0, 1)")
        for name in ("category_zipf", "item_zipf", "profile_strength", "user_noise", "length_sigma"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if self.length_median <= 0:
            problems.append("length_median must be > 0")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def token_names(self) -> list[str]:
        return [f"f{i + 1:02d}" for i in range(self.token_fields)]

    @property
    def float_names(self) -> list[str]:
        return [f"g{i + 1:02d}" for i in range(self.float_fields)]

    @property
    def signal_names(self) -> list[str]:
        return self.token_names[: self.signal_token_fields] + self.float_names[: self.signal_float_fields]


def _zipf(n: int, exponent: float, rng) -> np.ndarray:
    """Zipf weights over a random order of n things, summing to 1."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    weights = weights[rng.permutation(n)]
    return weights / weights.sum()


def _draw(cumulative: np.ndarray, rows: np.ndarray, rng) -> np.ndarray:
    """One index per row of ``cumulative`` (row-wise cumulative probabilities), vectorised."""
    u = rng.random(len(rows))[:, None] * cumulative[rows, -1:]
    return (cumulative[rows] < u).sum(axis=1)


def generate(spec: SynthSpec) -> dict:
    """Everything the generator draws, as arrays (see :func:`write` for the files)."""
    rng = np.random.default_rng(spec.seed)
    n_users, n_items, n_cats = spec.users, spec.items, spec.categories

    # 1. items: a category each (every category used), a popularity
    category_share = _zipf(n_cats, spec.category_zipf, rng)
    item_category = np.r_[rng.permutation(n_cats), rng.choice(n_cats, n_items - n_cats, p=category_share)]
    item_category = item_category[rng.permutation(n_items)]
    popularity = _zipf(n_items, spec.item_zipf, rng)
    totals = np.bincount(item_category, weights=popularity, minlength=n_cats)
    within = popularity / totals[item_category]  # p(item | its category)

    # 2. profiles
    vocab = np.round(np.exp(rng.uniform(np.log(spec.vocab_min), np.log(spec.vocab_max + 0.999), spec.token_fields)))
    vocab = np.clip(vocab.astype(int), spec.vocab_min, spec.vocab_max)
    tokens = np.stack([rng.choice(v, n_users, p=_zipf_skew(v)) for v in vocab], axis=1) if spec.token_fields else np.zeros((n_users, 0), int)
    floats = rng.normal(size=(n_users, spec.float_fields))

    # 3. affinities: each category's relevant signal fields and their preference values
    levels = [tokens[:, i] for i in range(spec.signal_token_fields)]
    edges = _normal_quantiles(spec.float_buckets)
    levels += [np.searchsorted(edges, floats[:, i]) for i in range(spec.signal_float_fields)]
    n_levels = [int(v) for v in vocab[: spec.signal_token_fields]] + [spec.float_buckets] * spec.signal_float_fields
    n_signal = len(levels)
    relevant = np.zeros((n_cats, n_signal), dtype=bool)
    for c in range(n_cats):
        relevant[c, rng.choice(n_signal, spec.fields_per_category, replace=False)] = True
    preferences = [rng.normal(size=(n, n_cats)) for n in n_levels]
    level_matrix = np.stack(levels, axis=1).astype(np.int32)  # users x signal fields

    # 4. interests: Gumbel top-k draws categories without replacement by softmax(affinity),
    # users in chunks (a users x categories matrix at once would not fit at scale); the
    # noise and the Gumbel draws have streams of their own, so chunking changes nothing
    n_interests = rng.integers(spec.min_interests, spec.max_interests + 1, n_users)
    active = np.arange(spec.max_interests)[None, :] < n_interests[:, None]
    weights = rng.gamma(1.0, size=(n_users, spec.max_interests)) * active
    weights /= weights.sum(axis=1, keepdims=True)
    noise_rng, gumbel_rng = np.random.default_rng([spec.seed, 1]), np.random.default_rng([spec.seed, 2])
    interests = np.empty((n_users, spec.max_interests), dtype=np.int64)
    for start in range(0, n_users, _CHUNK):
        rows = slice(start, min(n_users, start + _CHUNK))
        size = (rows.stop - rows.start, n_cats)
        affinity = profile_affinity(level_matrix[rows], category_share, preferences, relevant, spec)
        affinity += spec.user_noise * noise_rng.normal(size=size)
        affinity -= np.log(-np.log(gumbel_rng.random(size)))  # + Gumbel noise
        top = np.argpartition(-affinity, spec.max_interests - 1, axis=1)[:, : spec.max_interests]
        interests[rows] = np.take_along_axis(top, np.argsort(-np.take_along_axis(affinity, top, axis=1), axis=1), axis=1)
    interests = np.where(active, interests, -1)

    # 5. histories, one step for every user at a time
    lengths = np.clip(np.round(rng.lognormal(np.log(spec.length_median), spec.length_sigma, n_users)),
                      spec.min_length, spec.max_length).astype(int)
    order = np.argsort(item_category, kind="stable")  # items grouped by category
    sorted_category = item_category[order]
    cumulative = np.cumsum(within[order])
    base = np.r_[0.0, cumulative][np.searchsorted(sorted_category, np.arange(n_cats))]
    keys = sorted_category + (cumulative - base[sorted_category])  # category c: keys in (c, c + 1]
    global_cdf = np.cumsum(popularity)
    interest_cdf = np.cumsum(weights, axis=1)
    users_out, items_out, noise_out = [], [], []
    current = _draw(interest_cdf, np.arange(n_users), rng)
    for t in range(int(lengths.max())):
        rows = np.flatnonzero(lengths > t)
        if t > 0:
            switch = rows[rng.random(len(rows)) >= spec.stay]
            current[switch] = _draw(interest_cdf, switch, rng)
        category = interests[rows, current[rows]]
        item = order[np.minimum(np.searchsorted(keys, category + rng.random(len(rows)) * (1 - 1e-12)), n_items - 1)]
        noise = rng.random(len(rows)) < spec.noise_clicks
        item[noise] = np.minimum(np.searchsorted(global_cdf, rng.random(noise.sum()) * global_cdf[-1]), n_items - 1)
        users_out.append(rows)
        items_out.append(item)
        noise_out.append(noise)
    users_all, items_all, noise_all = np.concatenate(users_out), np.concatenate(items_out), np.concatenate(noise_out)
    steps = np.concatenate([np.full(len(r), t) for t, r in enumerate(users_out)])
    by_user = np.lexsort((steps, users_all))
    users_all, items_all, noise_all = users_all[by_user], items_all[by_user], noise_all[by_user]
    # a repeat of an item by the same user is dropped (first click kept)
    pair = users_all.astype(np.int64) * n_items + items_all
    _, first = np.unique(pair, return_index=True)
    keep = np.sort(first)
    users_all, items_all, noise_all = users_all[keep], items_all[keep], noise_all[keep]
    starts = np.searchsorted(users_all, np.arange(n_users))
    position = np.arange(len(users_all)) - starts[users_all]
    return {
        "spec": spec, "item_category": item_category, "popularity": popularity, "within": within,
        "category_share": category_share, "vocab": vocab, "tokens": tokens, "floats": floats, "levels": level_matrix,
        "relevant": relevant, "preferences": preferences, "interests": interests, "weights": weights,
        "users": users_all, "items": items_all, "positions": position, "noise": noise_all,
    }


# Users per chunk of the users x categories computations.
_CHUNK = 50_000


def profile_affinity(levels: np.ndarray, category_share: np.ndarray, preferences: list[np.ndarray],
                     relevant: np.ndarray, spec: SynthSpec) -> np.ndarray:
    """``users x categories``: the log base share of each category plus ``profile_strength``
    times the summed preference values of the category's relevant signal fields at the
    users' values (``levels``: users x signal fields), over the square root of their number;
    what the profile tells, without the user's own noise."""
    affinity = np.repeat(np.log(category_share)[None, :], len(levels), axis=0)
    for s, table in enumerate(preferences):
        affinity += spec.profile_strength * table[levels[:, s]] * relevant[:, s] / np.sqrt(spec.fields_per_category)
    return affinity


def _zipf_skew(n: int) -> np.ndarray:
    """How often a profile field's values occur: skewed (weights 1/(rank + 1)^0.7)."""
    weights = (np.arange(n) + 1.0) ** -0.7
    return weights / weights.sum()


def _normal_quantiles(buckets: int) -> np.ndarray:
    """Inner bucket edges of ``buckets`` equally likely buckets of a standard normal."""
    from statistics import NormalDist

    return np.array([NormalDist().inv_cdf(q) for q in np.arange(1, buckets) / buckets])


def write(data: dict, out, ideal: bool = False) -> Path:
    """Write the atomic files, the truth and a config to ``out`` (see the module), and with
    ``ideal`` the ideal HitRates (``ideal.json``, :func:`ideal_hit_rates`). The dataset's
    folder is written beside its place and moved in whole, with everything in it (a generation
    killed or failed midway leaves the previous dataset, or none, never a cut-short file that
    RecBole would load); returns it."""
    spec = data["spec"]
    final = Path(out) / spec.name
    fields = spec.token_names + spec.float_names
    config = (f"# The fields of the synthetic dataset in {final} (python -m recbole_umi.datasets.synth); pass with --config_files.\n"
              f"load_col:\n  inter: [user_id, item_id, timestamp]\n  user: [user_id, {', '.join(fields)}]\n"
              f"profile_fields: [{', '.join(fields)}]\n")
    with folder_whole(final, "a synthetic dataset's generation") as folder:
        _write_folder(folder, data)
        if ideal:
            write_atomic(folder / "ideal.json", json.dumps(ideal_hit_rates(folder), indent=2) + "\n")
        write_atomic(Path(out) / f"{spec.name}.yaml", config)  # last before the folder moves in
    return final


def _write_folder(folder: Path, data: dict) -> None:
    """The files of the dataset's folder (:func:`write`)."""
    spec = data["spec"]
    n_users = spec.users
    _write_tsv(folder / f"{spec.name}.inter", ["user_id:token", "item_id:token", "timestamp:float"],
               [data["users"] + 1, data["items"] + 1, data["positions"]])
    header = ["user_id:token", *(f"{n}:token" for n in spec.token_names), *(f"{n}:float" for n in spec.float_names)]
    _write_tsv(folder / f"{spec.name}.user", header,
               [np.arange(1, n_users + 1), *(data["tokens"][:, i] + 1 for i in range(spec.token_fields)),
                *(data["floats"][:, i] for i in range(spec.float_fields))])
    categories = np.char.add("c", np.char.zfill((data["item_category"] + 1).astype(str), 3))
    _write_tsv(folder / f"{spec.name}.item", ["item_id:token", "category:token"], [np.arange(1, spec.items + 1), categories])
    truth = {key: data[key] for key in ("item_category", "popularity", "within", "category_share", "relevant", "levels",
                                       "interests", "weights", "noise")}
    truth.update({f"preferences_{name}": p for name, p in zip(spec.signal_names, data["preferences"])})
    np.savez_compressed(folder / "truth.npz", **truth)
    lengths = np.bincount(data["users"], minlength=n_users)
    summary = {
        "interactions": int(len(data["users"])),
        "history_length": {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
                           "share_at_most_10": float((lengths <= 10).mean()), "max": int(lengths.max())},
        "noise_click_share": float(data["noise"].mean()),
        "signal_fields": spec.signal_names,
        "relevant_fields_by_category": {f"c{c + 1:03d}": [spec.signal_names[s] for s in np.flatnonzero(r)]
                                        for c, r in enumerate(data["relevant"])},
    }
    (folder / "generator.json").write_text(json.dumps({"spec": dataclasses.asdict(spec), "summary": summary}, indent=2) + "\n")


def _write_tsv(path: Path, header: list[str], columns: list[np.ndarray], chunk: int = 500_000) -> None:
    """A tab-separated file, a million rows at a time at most (whole columns of strings
    would take gigabytes at scale); floats with 4 decimals."""
    with open(path, "w") as handle:
        handle.write("\t".join(header) + "\n")
        for start in range(0, len(columns[0]), chunk):
            parts = [c[start : start + chunk] for c in columns]
            text = [np.char.mod("%.4f", part) if part.dtype.kind == "f" else part.astype(str) for part in parts]
            rows = text[0]
            for column in text[1:]:
                rows = np.char.add(np.char.add(rows, "\t"), column)
            handle.write("\n".join(rows.tolist()) + "\n")


def ideal_hit_rates(folder, topk=(10, 50, 100), ratios=(0.8, 0.1, 0.1), split_seed=2022, history_share=0.9,
                    samples=64, seed=0) -> dict:
    """HitRate@N (RecBole's recall@N) on the paper's protocol's test users of a generated
    dataset, for rankings that know more than any model can:

    - ``truth``: the user's true click distribution (their interests and weights);
    - ``truth, history excluded``: the same without the items of the user's history (the
      models do not exclude them; repeats were dropped, so no held-out item is in it);
    - ``profile only``: the click distribution expected from the user's profile alone
      (interests drawn ``samples`` times from the profile's affinities without the user's
      own noise);
    - ``popularity``: global popularity.
    """
    from recbole_umi.data.split import history_cut, split_users  # the protocol's split (its package loads RecBole)

    folder = Path(folder)
    meta = json.loads((folder / "generator.json").read_text())
    spec = SynthSpec(**meta["spec"])
    truth = np.load(folder / "truth.npz")
    name = spec.name
    raw = np.loadtxt(folder / f"{name}.inter", dtype=np.int64, skiprows=1, delimiter="\t", usecols=(0, 1))
    users, items = raw[:, 0] - 1, raw[:, 1] - 1  # rows already by user and position
    starts = np.searchsorted(users, np.arange(spec.users + 1))
    present = np.flatnonzero(np.diff(starts) > 0)
    tokens = (present + 1).astype(str)
    test = present[split_users(tokens, list(ratios), split_seed)[2]]
    length = starts[test + 1] - starts[test]
    test, length = test[length >= 2], length[length >= 2]
    cut = history_cut(length, history_share)

    category, within, popularity = truth["item_category"], truth["within"], truth["popularity"]
    noise = spec.noise_clicks
    one_hot = np.zeros((spec.categories, spec.items))
    one_hot[category, np.arange(spec.items)] = within  # p(item | category)
    interests, weights = truth["interests"][test], truth["weights"][test]
    category_weight = np.zeros((len(test), spec.categories))
    np.add.at(category_weight, (np.repeat(np.arange(len(test)), interests.shape[1]), interests.ravel().clip(0)),
              weights.ravel() * (interests.ravel() >= 0))
    rng = np.random.default_rng(seed)
    expected = np.zeros((len(test), spec.categories))
    preferences = [truth[f"preferences_{name}"] for name in spec.signal_names]
    affinity = profile_affinity(truth["levels"][test], truth["category_share"], preferences, truth["relevant"], spec)
    for _ in range(samples):  # interests as drawn in generate(), without the user's own noise
        k = rng.integers(spec.min_interests, spec.max_interests + 1, len(test))
        drawn = np.argsort(-(affinity - np.log(-np.log(rng.random(affinity.shape)))), axis=1)[:, : spec.max_interests]
        w = rng.gamma(1.0, size=drawn.shape) * (np.arange(spec.max_interests)[None, :] < k[:, None])
        w /= w.sum(axis=1, keepdims=True)
        np.add.at(expected, (np.repeat(np.arange(len(test)), drawn.shape[1]), drawn.ravel()), w.ravel() / samples)
    rankings = {
        "truth": noise * popularity + (1 - noise) * category_weight @ one_hot,
        "profile only": noise * popularity + (1 - noise) * expected @ one_hot,
        "popularity": np.broadcast_to(popularity, (len(test), spec.items)),
    }
    results = {}
    for label, scores in [*rankings.items(), ("truth, history excluded", rankings["truth"])]:
        scores = np.array(scores, dtype=np.float64)
        if label == "truth, history excluded":
            for row, user in enumerate(test):
                scores[row, items[starts[user] : starts[user] + cut[row]]] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, : max(topk)]
        rates = {}
        for n in topk:
            hits = [np.isin(items[starts[u] + c : starts[u + 1]], top[row, :n]).mean() for row, (u, c) in enumerate(zip(test, cut))]
            rates[f"hit_rate@{n}"] = float(np.mean(hits))
        results[label] = rates
    return {"test_users": int(len(test)), "topk": list(topk), "rankings": results,
            "users": [str(u + 1) for u in test]}


# What each option of the command does (the module's text says how they combine).
OPTION_HELP = {
    "name": "the dataset's name (files <name>.inter, .user, .item)",
    "users": "users", "items": "items", "categories": "item categories",
    "category_zipf": "Zipf exponent of the categories' sizes",
    "item_zipf": "Zipf exponent of the items' popularity",
    "token_fields": "token profile fields f01, f02, ...",
    "float_fields": "float profile fields g01, g02, ...",
    "signal_token_fields": "of the token fields, how many carry signal (the first ones)",
    "signal_float_fields": "of the float fields, how many carry signal (the first ones)",
    "vocab_min": "the smallest vocabulary of a token field", "vocab_max": "the largest vocabulary of a token field",
    "float_buckets": "quantile buckets through which a float field acts",
    "fields_per_category": "signal fields each category depends on",
    "profile_strength": "weight of the profile in a user's affinity to a category (0: none)",
    "user_noise": "s.d. of a user's own affinity noise, what the profile cannot explain",
    "min_interests": "the fewest interests of a user", "max_interests": "the most interests of a user",
    "length_median": "median history length (log-normal)", "length_sigma": "log s.d. of the history lengths",
    "min_length": "shortest history (before repeats are dropped)", "max_length": "longest history",
    "stay": "probability that a click keeps the previous click's interest",
    "noise_clicks": "share of clicks drawn by global popularity (noise)",
    "seed": "the generator's seed",
}


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m recbole_umi.datasets.synth", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("out", help="folder to write <name>/ into")
    for field in dataclasses.fields(SynthSpec):
        parser.add_argument(f"--{field.name}", type=type(field.default), default=field.default,
                            help=OPTION_HELP[field.name])
    parser.add_argument("--ideal", action="store_true",
                        help="also compute the ideal HitRates on the paper's protocol's test users (ideal.json)")
    args = vars(parser.parse_args(sys.argv[1:] if argv is None else argv))
    ideal = args.pop("ideal")
    out = args.pop("out")
    spec = SynthSpec(**args)
    started = time.perf_counter()
    folder = write(generate(spec), out, ideal=ideal)
    summary = json.loads((folder / "generator.json").read_text())["summary"]
    print(f"{folder}: {summary['interactions']:,} interactions of {spec.users:,} users over {spec.items:,} items "
          f"in {time.perf_counter() - started:.1f} s{' with the ideal rates' if ideal else ''}")
    if ideal:
        for label, rates in json.loads((folder / "ideal.json").read_text())["rankings"].items():
            print(f"ideal, {label}: " + ", ".join(f"{k} {v:.4f}" for k, v in rates.items()))
    return folder


if __name__ == "__main__":
    from recbole_umi.cli import command

    sys.exit(command(main, prog="python -m recbole_umi.datasets.synth"))
