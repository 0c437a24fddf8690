"""The noise-immunity command (Table 5) on tiny data: both runs, the table, resuming."""

import csv
import json

import pytest

from recbole_umi.experiments import noise
from tests.conftest import write_config


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy's, of data without spread (below)
def test_noise_table_and_resume(tiny_data, tmp_path, monkeypatch):
    config = write_config(tmp_path / "tiny.yaml", epochs=1, eval_protocol="user_split", data_path=str(tiny_data),
                          checkpoint_dir=str(tmp_path / "saved"))
    argv = ["--models=UMI,MIND", "--dataset=tiny", "--profile_noise=0.5", "--seeds=1,2", f"--out={tmp_path / 'out'}",
            f"--config_files={config}"]
    markdown = noise.main(argv)
    with (tmp_path / "out" / "table5.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:2] == ["model", "profiles"] and [r[:2] for r in rows[1:]] == [
        ["UMI", "clean"], ["UMI", "noisy"], ["UMI", "relative drop %"],
        ["MIND", "clean"], ["MIND", "noisy"], ["MIND", "relative drop %"]]
    for start in (1, 4):  # the drop is (clean - noisy) / clean, in percent
        for clean, noisy, drop in zip(*(rows[start + i][2:] for i in range(3))):
            if float(clean):
                assert float(drop) == pytest.approx(100 * (float(clean) - float(noisy)) / float(clean), abs=1e-3)
    assert "| UMI (noise) |" in markdown and "| drop of UMI - drop of MIND |" in markdown
    # the first cell (HitRate@5): the two-level test of the clean against the noisy runs, a
    # seed's two runs paired (they start from the same weights)
    from recbole_umi.stats import two_level_test

    def per_seed(kind, variant="UMI"):
        runs = [json.loads((tmp_path / "out" / kind / "runs" / f"{variant}__seed{s}.json").read_text()) for s in (1, 2)]
        return [[100 * x for x in r["test_per_user"]["recall@5"]] for r in runs]

    row = next(line for line in markdown.splitlines() if line.startswith("| UMI: clean - noisy |"))
    test = two_level_test(per_seed("clean"), per_seed("noisy"), paired_seeds=True)
    assert row.split(" | ")[1] == f"{test['delta']:+.3f} [{test['low']:+.2f}, {test['high']:+.2f}] (p={test['p']:.3g})"
    # the drops against each other: independent seeds
    import numpy as np

    drops = {v: np.subtract(per_seed("clean", v), per_seed("noisy", v)) for v in ("UMI", "MIND")}
    row = next(line for line in markdown.splitlines() if line.startswith("| drop of UMI - drop of MIND |"))
    test = two_level_test(drops["UMI"], drops["MIND"])
    assert row.split(" | ")[1].startswith(f"{test['delta']:+.3f} [")
    assert len(list((tmp_path / "out" / "clean" / "runs").glob("*.json"))) == 4
    assert len(list((tmp_path / "out" / "noisy" / "runs").glob("*.json"))) == 4
    # run again: every run is on disk, nothing trains, the same table
    monkeypatch.setattr("recbole_umi.experiments.runs.run", lambda *a, **k: pytest.fail("nothing should train"))
    assert noise.main(argv) == markdown


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="above 0"):
        noise.main(["--models=UMI", "--profile_noise=0", f"--out={tmp_path}"])
    with pytest.raises(ValueError, match="profile_noise"):
        noise.main(["--models=UMI", "--profile_noise=1.5", f"--out={tmp_path}"])
    with pytest.raises(ValueError, match="--seeds"):
        noise.main(["--models=UMI", f"--out={tmp_path}", "--seed=3"])


def test_clean_runs_from_an_earlier_comparison(tiny_data, tmp_path, monkeypatch):
    from recbole_umi.experiments import runs as compare
    from recbole_umi.experiments.compare import main as compare_main

    config = write_config(tmp_path / "tiny.yaml", epochs=1, eval_protocol="user_split", data_path=str(tiny_data),
                          checkpoint_dir=str(tmp_path / "saved"))
    table2 = tmp_path / "table2"
    compare_main(["--models=UMI", "--dataset=tiny", "--seeds=1", f"--out={table2}", f"--config_files={config}",
                  "--learning_rate=0.01"])
    earlier = (table2 / "runs" / "UMI__seed1.json").read_text()
    trained = []
    real_run = compare.run
    monkeypatch.setattr("recbole_umi.experiments.runs.run", lambda *a, **k: trained.append(a[3]) or real_run(*a, **k))
    argv = ["--models=UMI", "--dataset=tiny", "--profile_noise=0.5", "--seeds=1", f"--out={tmp_path / 'out'}",
            f"--config_files={config}", f"--clean_from={table2}"]
    noise.main([*argv, "--learning_rate=0.01"])
    # only the noisy run trained; the clean one is the comparison's, untouched
    assert [settings["profile_noise"] for settings in trained] == [0.5]
    assert (table2 / "runs" / "UMI__seed1.json").read_text() == earlier
    assert not (tmp_path / "out" / "clean").exists()
    with (tmp_path / "out" / "table5.csv").open() as handle:
        header, *rows = csv.reader(handle)
    clean_row = next(row for row in rows if row[:2] == ["UMI", "clean"])
    # the table is in percent, of each run's mean over its test users (RecBole's figure is rounded)
    per_user = json.loads(earlier)["test_per_user"]["recall@5"]
    recall = sum(per_user) / len(per_user)
    assert float(clean_row[header.index("HitRate@5")]) == pytest.approx(100 * recall, abs=1e-4)
    # a comparison made with other settings is refused before anything trains
    with pytest.raises(compare.SettingsMismatchError, match="UMI__seed1.json"):
        noise.main([*argv, "--learning_rate=0.02"])
