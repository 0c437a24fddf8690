"""Every model x loss through the command line, on a tiny dataset the tests write."""

import subprocess
import sys

import pytest

from recbole_umi.quick_start import main
from tests.conftest import REPO_ROOT, write_config

LOSS_ARGS = {
    "sampled": ["--loss_type=sampled_softmax", "--harder_negatives=False"],
    "sampled+HN": ["--loss_type=sampled_softmax", "--harder_negatives=True"],
    "full": ["--loss_type=full_softmax"],
}
def cli_args(data_path, model, *extra_files):
    config_file = write_config(data_path / "tiny.yaml", epochs=1, train_neg_sample_args=None)
    files = ",".join(str(f) for f in (config_file, *extra_files))
    return [f"--model={model}", "--dataset=tiny", f"--data_path={data_path}", f"--config_files={files}"]


@pytest.mark.parametrize("model", ["UMI", "MIND", "ComiRec", "ComiRecSA", "ProfileDSSM", "YoutubeDNN"])
@pytest.mark.parametrize("loss", sorted(LOSS_ARGS))
def test_every_model_and_loss_runs(tiny_data, model, loss, capsys):
    result = main(cli_args(tiny_data, model) + LOSS_ARGS[loss])
    assert set(result["test_result"]) == {"recall@5", "precision@5"}
    assert "test result: {'recall@5'" in capsys.readouterr().out


def test_recbole_builtin_runs_through_the_same_script(tiny_data):
    result = main(cli_args(tiny_data, "SASRec"))
    assert 0.0 <= result["test_result"]["recall@5"] <= 1.0


def test_script_in_a_fresh_process(tiny_data, tmp_path):
    config_file = tmp_path / "extra.yaml"
    config_file.write_text("n_interests: 2\n")
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_recbole_umi.py"), *cli_args(tiny_data, "UMI", config_file), "--state=INFO"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "test result: {'recall@5'" in out.stdout
    assert "n_interests = 2" in out.stdout + out.stderr  # the later config file won


def test_malformed_argument_is_rejected(tiny_data):
    with pytest.raises(ValueError, match="--key=value"):
        main(cli_args(tiny_data, "UMI") + ["epochs"])
