"""The command line, on a tiny dataset the tests write: one run in a fresh process, one
malformed argument. (What every model and loss learns: tests/test_known_answers.py.)"""

import subprocess
import sys

import pytest

from recbole_umi.quick_start import main
from tests.conftest import REPO_ROOT, write_config


def cli_args(data_path, model, *extra_files):
    config_file = write_config(data_path / "tiny.yaml", epochs=1, train_neg_sample_args=None)
    files = ",".join(str(f) for f in (config_file, *extra_files))
    return [f"--model={model}", "--dataset=tiny", f"--data_path={data_path}", f"--config_files={files}"]


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
