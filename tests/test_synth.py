"""The profile-rich generator: its documented properties, its files, and a run on its data."""

import json

import numpy as np
import pytest

from recbole_umi.datasets.synth import SynthSpec, generate, ideal_hit_rates, main, write

SMALL = dict(users=3000, items=1500, categories=12, token_fields=4, float_fields=2, signal_token_fields=2,
             signal_float_fields=1, max_interests=3, length_median=12, max_length=60, seed=5)


@pytest.fixture(scope="module")
def small():
    spec = SynthSpec(**SMALL)
    return spec, generate(spec)


def test_seeded_and_deterministic(tmp_path):
    spec = SynthSpec(**{**SMALL, "users": 200})
    first, again = write(generate(spec), tmp_path / "a"), write(generate(spec), tmp_path / "b")
    other = write(generate(SynthSpec(**{**SMALL, "users": 200, "seed": 6})), tmp_path / "c")
    for name in ("synth.inter", "synth.user", "synth.item"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    assert (first / "synth.inter").read_bytes() != (other / "synth.inter").read_bytes()


def test_clicks_follow_the_interests(small):
    spec, data = small
    users, items, noise = data["users"], data["items"], data["noise"]
    category = data["item_category"][items]
    # every click that is not noise is in one of its user's interests, and noise is rare
    in_interest = (data["interests"][users] == category[:, None]).any(axis=1)
    assert in_interest[~noise].all()
    assert 0.5 * spec.noise_clicks < noise.mean() < 2 * spec.noise_clicks
    # each user has between min and max interests, weights summing to 1
    n = (data["interests"] >= 0).sum(axis=1)
    assert n.min() == spec.min_interests and n.max() == spec.max_interests
    np.testing.assert_allclose(data["weights"].sum(axis=1), 1.0)
    # no repeats; positions 0, 1, ... within each user
    assert len(np.unique(users.astype(np.int64) * spec.items + items)) == len(users)
    starts = np.searchsorted(users, np.arange(spec.users))
    assert (data["positions"] == np.arange(len(users)) - starts[users]).all()
    # many short histories, a long tail
    lengths = np.bincount(users, minlength=spec.users)
    assert 0.6 * spec.length_median <= np.median(lengths) <= spec.length_median
    assert lengths.max() > 3 * np.median(lengths) and (lengths <= 10).mean() > 0.3


def test_relevant_fields_carry_the_signal(small):
    # per category, how much its click share moves across a field's values: the fields
    # that category depends on move it far more than the fields that carry no signal
    spec, data = small
    users, category = data["users"], data["item_category"][data["items"]]
    share = np.zeros((spec.users, spec.categories))
    np.add.at(share, (users, category), 1.0)
    share /= share.sum(axis=1, keepdims=True)

    def spread(values, c):
        means = [share[values == v, c].mean() for v in np.unique(values) if (values == v).sum() >= 30]
        return np.std(means)

    noise_field = data["tokens"][:, spec.signal_token_fields]  # the first field without signal
    relevant, irrelevant = [], []
    for c in range(spec.categories):
        for s in np.flatnonzero(data["relevant"][c, : spec.signal_token_fields]):
            relevant.append(spread(data["tokens"][:, s], c))
        irrelevant.append(spread(noise_field, c))
    assert np.mean(relevant) > 2 * np.mean(irrelevant)  # measured: 0.053 against 0.022


def test_a_generation_that_fails_midway_keeps_the_previous_dataset(tmp_path, monkeypatch):
    """The scripts regenerate only where ``synth.inter`` is missing: a generation killed or
    failed after writing it must not leave a dataset RecBole would load cut short."""
    from recbole_umi.datasets import synth

    spec = SynthSpec(**{**SMALL, "users": 200})
    folder = write(generate(spec), tmp_path)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}

    def no_room(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(synth.np, "savez_compressed", no_room)  # after the three atomic files
    with pytest.raises(OSError, match="No space"):
        write(generate(SynthSpec(**{**SMALL, "users": 300})), tmp_path)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["synth", "synth.yaml"]


def test_files_config_and_ideal_rates(tmp_path, capsys):
    folder = main([str(tmp_path), *[f"--{k}={v}" for k, v in SMALL.items()], "--ideal"])
    assert "interactions of 3,000 users" in capsys.readouterr().out
    header = (folder / "synth.user").read_text().splitlines()[0].split("\t")
    assert header == ["user_id:token", "f01:token", "f02:token", "f03:token", "f04:token", "g01:float", "g02:float"]
    items = (folder / "synth.item").read_text().splitlines()
    assert len(items) == 1 + 1500 and items[1].split("\t")[1].startswith("c")
    meta = json.loads((folder / "generator.json").read_text())
    assert meta["spec"]["seed"] == 5 and meta["summary"]["signal_fields"] == ["f01", "f02", "g01"]
    assert "profile_fields: [f01, f02, f03, f04, g01, g02]" in (tmp_path / "synth.yaml").read_text()
    rates = json.loads((folder / "ideal.json").read_text())["rankings"]
    # knowing the interests beats knowing the profile, which beats popularity
    assert rates["truth"]["hit_rate@50"] > rates["profile only"]["hit_rate@50"] > rates["popularity"]["hit_rate@50"]
    assert rates["truth, history excluded"]["hit_rate@50"] >= rates["truth"]["hit_rate@50"]
    assert ideal_hit_rates(folder, topk=(50,))["rankings"]["truth"]["hit_rate@50"] == rates["truth"]["hit_rate@50"]


def test_a_model_runs_on_it_and_the_ideal_rates_use_its_test_users(tmp_path, monkeypatch):
    from recbole_umi.config import Config
    from recbole_umi.evaluation import evaluated_users
    from recbole_umi.pipeline import build
    from recbole_umi.quick_start import run

    monkeypatch.chdir(tmp_path)
    spec = {**SMALL, "users": 300, "items": 200}
    folder = main([str(tmp_path / "data"), *[f"--{k}={v}" for k, v in spec.items()]])
    config = Config("UMI", "synth", config_file_list=[str(tmp_path / "data" / "synth.yaml")],
                    config_dict={"data_path": str(tmp_path / "data"), "state": "ERROR", "n_negatives": 50})
    _, _, _, test_data, _ = build(config)
    assert ideal_hit_rates(folder, topk=(10,))["users"] == evaluated_users(test_data)
    result = run("UMI", "synth", config_file_list=[str(tmp_path / "data" / "synth.yaml")], config_dict={
        "data_path": str(tmp_path / "data"), "epochs": 1, "state": "ERROR", "show_progress": False,
        "n_negatives": 50, "n_interests": 3, "checkpoint_dir": str(tmp_path / "saved")}, saved=False)
    assert result["eval_protocol"] == "user_split" and 0 <= result["test_result"]["recall@50"] <= 1


@pytest.mark.parametrize("bad, message", [
    ({"signal_token_fields": 5, "token_fields": 4}, "signal fields must be at most"),
    ({"noise_clicks": 1.0}, "noise_clicks must be in"),
    ({"max_interests": 20, "categories": 12}, "max_interests <= categories"),
])
def test_bad_knobs(bad, message):
    with pytest.raises(ValueError, match=message):
        SynthSpec(**{**SMALL, **bad})


def test_every_generator_option_is_described_with_its_default(capsys):
    import dataclasses

    from recbole_umi.datasets.synth import SynthSpec, main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(SynthSpec):
        assert f"--{field.name} " in out and f"(default: {field.default})" in out, field.name
