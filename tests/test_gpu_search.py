"""The search's trials made on a lent GPU come back into main's results
(scripts/gpu_search.py import): new trial records are added and marked with their machine, a
trial made on both machines keeps this one's, a trial made with other settings is refused, a
carried checkpoint replaces this machine's only where it is further along, and the carried
checkpoints of trials finished now are dropped here and in the search's checkout; and what
prepare sets aside for the device's size limit is only committed, unchanged result folders,
restored afterwards."""

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import carry_checkpoints  # noqa: E402
import gpu_search  # noqa: E402

from recbole_umi.checkpoints.format import write_checkpoint  # noqa: E402
from test_search_session import trial_folder  # noqa: E402

UMISA = Path("results/search/ml-1m/UMISA")
SASREC = Path("results/search/ml-1m/SASRec")


def trial(number: int, learning_rate: float) -> bytes:
    record = {"trial": number, "params": {"learning_rate": learning_rate}, "best_valid_score": 0.4,
              "epochs": 20, "wall_s": 300.0}
    return (json.dumps(record) + "\n").encode()


def carried(tmp_path: Path, epoch: int) -> bytes:
    """A carried run's archive (carry_checkpoints.py's format) whose -last checkpoint is at ``epoch``."""
    folder = tmp_path / f"run-{epoch}"
    folder.mkdir()
    last = write_checkpoint(folder / "UMISA-x-last.pth", {"kind": "last", "epoch": epoch})
    return carry_checkpoints.pack([last])


def back_tar(path: Path, files: dict[Path, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(str(name))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def main(tmp_path, monkeypatch):
    root = tmp_path / "main"
    for out in (UMISA, SASREC):
        (root / out / "trials").mkdir(parents=True)
        (root / out / "carry").mkdir()
    monkeypatch.setattr(gpu_search, "ROOT", root)
    return root


def test_import_adds_new_trials_and_the_carried_checkpoints_further_along(main, tmp_path):
    (main / UMISA / "trials/001.json").write_bytes(trial(1, 0.001))
    (main / UMISA / "trials/002.json").write_bytes(trial(2, 0.002))  # made here too, meanwhile
    (main / UMISA / "carry/tune-003.tar.xz").write_bytes(carried(tmp_path, 2))  # here's attempt at trial 3
    (main / SASREC / "carry/tune-002.tar.xz").write_bytes(carried(tmp_path, 6))
    checkout = tmp_path / "wt-search"
    (checkout / "results").mkdir(parents=True)
    stale = trial_folder(checkout, 3, out=UMISA)
    stale.mkdir(parents=True)
    (main / UMISA / "tuning.json").write_text('{"space": "narrow"}\n')
    (main / SASREC / "tuning.json").write_text('{"space": "as here"}\n')
    backs = [back_tar(tmp_path / "back-UMISA.tar", {  # one archive a model, as gpu_search.sh writes them
        UMISA / "tuning.json": b'{"space": "widened there"}\n',  # the search went on there: its state too
        UMISA / "widened.hyper": b"learning_rate loguniform -9,-3\n",
        UMISA / "trials/002.json": trial(2, 0.002),
        UMISA / "trials/003.json": trial(3, 0.003),
        UMISA / "carry/tune-004.tar.xz": carried(tmp_path, 1),
    }), back_tar(tmp_path / "back-SASRec.tar", {
        SASREC / "tuning.json": b'{"space": "other"}\n',  # no trial of SASRec's came back: not taken
        SASREC / "carry/tune-002.tar.xz": carried(tmp_path, 4),  # behind this machine's
    })]

    gpu_search.main(["import", *map(str, backs), f"--checkout={checkout}", "--ran_on=one H100"])

    assert json.loads((main / UMISA / "trials/002.json").read_text()).get("ran_on") is None  # this machine's kept
    third = json.loads((main / UMISA / "trials/003.json").read_text())
    assert third["ran_on"] == "one H100" and third["params"] == {"learning_rate": 0.003}
    assert not (main / UMISA / "carry/tune-003.tar.xz").exists()  # trial 3 finished there
    assert not stale.exists()
    assert carry_checkpoints.archived_epoch(main / UMISA / "carry/tune-004.tar.xz") == 1
    assert carry_checkpoints.archived_epoch(main / SASREC / "carry/tune-002.tar.xz") == 6
    assert (main / UMISA / "tuning.json").read_text() == '{"space": "widened there"}\n'
    assert (main / UMISA / "widened.hyper").exists()
    assert (main / SASREC / "tuning.json").read_text() == '{"space": "as here"}\n'


def test_import_refuses_a_trial_made_there_with_other_settings_before_writing_anything(main, tmp_path):
    (main / UMISA / "trials/002.json").write_bytes(trial(2, 0.002))
    back = back_tar(tmp_path / "back-UMISA.tar", {UMISA / "trials/001.json": trial(1, 0.001),
                                                  UMISA / "trials/002.json": trial(2, 0.5)})
    with pytest.raises(SystemExit, match="other settings"):
        gpu_search.main(["import", str(back)])
    assert not (main / UMISA / "trials/001.json").exists()


def test_prepare_sets_aside_the_largest_committed_result_folders_until_the_tree_fits_and_restores_them(
        tmp_path, monkeypatch):
    root = tmp_path / "main"
    for name, size in (("results/big/run.json", 3000), ("results/middle/run.json", 2000),
                       ("results/changed/run.json", 5000), ("results/search/ml-1m/UMI/trials/001.json", 9000),
                       ("code.py", 971)):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x" * size)
    (root / ".gitignore").write_text("/.pinned/\n/.gpu-aside\n/.whl/\n")  # 29 bytes
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "results"], check=True)
    (root / "results/changed/run.json").write_bytes(b"y" * 5000)  # not as committed: never removed
    monkeypatch.setattr(gpu_search, "ROOT", root)
    monkeypatch.setattr(gpu_search, "DEVICE_LIMIT", 20000)
    monkeypatch.setattr(gpu_search, "ROOM", 1000)

    gpu_search.set_aside()  # 20,000 bytes travel, 19,000 may: the largest unchanged folder goes
    assert not (root / "results/big").exists()
    assert (root / "results/middle").exists() and (root / "results/changed").exists()
    assert (root / "results/search/ml-1m/UMI/trials/001.json").exists()
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert (root / ".gpu-aside").read_text() == f"{head} results/big\n"
    assert gpu_search.travelling_bytes() == 17000

    gpu_search.set_aside()  # a second prepare first restores what the first set aside
    assert (root / ".gpu-aside").read_text() == f"{head} results/big\n" and not (root / "results/big").exists()
    gpu_search.main(["restore"])
    assert (root / "results/big/run.json").read_bytes() == b"x" * 3000
    assert not (root / ".gpu-aside").exists()
    assert subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout == " M results/changed/run.json\n"
