"""Several processes through torch.distributed (gloo on CPU): a 2-process run learns what a
1-process run learns, writes one set of checkpoints, and a missing peer fails in time."""

import signal

import pytest
import torch.multiprocessing as mp

from recbole_umi.quick_start import _free_port, join_or_stop, run
from recbole_umi.settings import SettingsError
from tests.conftest import TINY_SETTINGS, write_atomic
from tests.sleeper import sleep_long
from tests.test_known_answers import CHANCE, GROUP_SIZE, THRESHOLD, group_sequences


@pytest.fixture
def groups(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one thread per process on a shared machine
    sequences, profiles = group_sequences()
    data = write_atomic(tmp_path / "data", "groups", sequences, profiles)
    return {**TINY_SETTINGS, "data_path": str(data), "checkpoint_dir": str(tmp_path / "saved"),
            "eval_protocol": "user_split", "train_neg_sample_args": None, "topk": [GROUP_SIZE],
            "valid_metric": f"Recall@{GROUP_SIZE}", "profile_fields": ["age"], "seed": 2020, "epochs": 6,
            "learning_rate": 0.02, "train_batch_size": 128}


def test_two_processes_learn_what_one_learns(groups, tmp_path):
    two = run("UMI", "groups", config_dict={**groups, "nproc": 2})
    one = run("UMI", "groups", config_dict={**groups, "checkpoint_dir": str(tmp_path / "one")})
    # the known answer: both find every user's group (1.0 with one process; chance is 0.25)
    for result in (one, two):
        assert result["test_result"][f"recall@{GROUP_SIZE}"] >= THRESHOLD > CHANCE
    assert abs(two["test_result"][f"recall@{GROUP_SIZE}"] - one["test_result"][f"recall@{GROUP_SIZE}"]) <= 0.1
    # every test user evaluated once, by every process alike: the same users as one process
    assert two["test_per_user"]["user"] == one["test_per_user"]["user"]
    # only the first process wrote checkpoints: one best file and its -last file
    written = sorted(p.name for p in (tmp_path / "saved").glob("*.pth"))
    assert len(written) == 2 and sum(name.endswith("-last.pth") for name in written) == 1


def test_a_missing_peer_fails_within_the_timeout(groups):
    # one process of two: its peer never comes; the run must end, not hang
    settings = {**groups, "nproc": 1, "world_size": 2, "port": _free_port(), "dist_timeout": 3}
    with pytest.raises(mp.ProcessRaisedException, match="could not join the others .* within 3 s"):
        run("UMI", "groups", config_dict=settings)


def test_process_settings_are_checked(groups):
    with pytest.raises(SettingsError, match="'world_size' = 2: must be at least offset \\+ nproc"):
        run("UMI", "groups", config_dict={**groups, "nproc": 2, "world_size": 2, "offset": 1})
    with pytest.raises(SettingsError, match="'port' = 0: must be given on several machines"):
        run("UMI", "groups", config_dict={**groups, "nproc": 1, "world_size": 2})
    with pytest.raises(SettingsError, match="dist_backend"):
        run("UMI", "groups", config_dict={**groups, "nproc": 2, "dist_backend": "mpi"})


def _interrupt(*_):
    raise KeyboardInterrupt


def test_a_stopped_run_ends_its_processes():
    """A ``kill`` reaches the first process only (command() makes it a KeyboardInterrupt): the
    processes it started are ended before the stop is raised, not left training while its
    exit waits for them."""
    processes = mp.spawn(sleep_long, nprocs=2, join=False)
    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, 2.0)  # the stop, while it waits for them
    try:
        with pytest.raises(KeyboardInterrupt):
            join_or_stop(processes)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert [process.is_alive() for process in processes.processes] == [False, False]
    assert all(process.exitcode == -signal.SIGTERM for process in processes.processes)
