"""The warning where torch's threads outnumber the cores other processes leave free."""

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recbole_umi import cores


@pytest.mark.parametrize("threads, n_cores, busy, free", [
    (2, 2, 1, 1),  # the README's case: two threads beside one busy process on two cores
    (2, 2, 2, 1),  # the search's two streams
    (4, 4, 2, 2),
    (3, 2, 2, 1),  # no core free: one thread
])
def test_threads_beyond_the_free_cores_are_warned_about_with_the_setting_that_fits(threads, n_cores, busy, free):
    message = cores.crowding_message(threads, n_cores, busy)
    assert f"torch uses {threads} threads" in message and f"{busy} of this machine's {n_cores} cores" in message
    assert f"OMP_NUM_THREADS={free} " in message


@pytest.mark.parametrize("threads, n_cores, busy", [(1, 2, 5), (2, 4, 2), (2, 2, 0), (8, 16, 3)])
def test_threads_that_fit_or_one_thread_are_not(threads, n_cores, busy):
    assert cores.crowding_message(threads, n_cores, busy) is None


def stat_line(pid: int, name: str, state: str) -> str:
    return f"{pid} ({name}) {state} 1 {pid} {pid} 0 -1 4194560 0 0 0 0 10 5 0 0 20 0 1 0\n"


def test_the_runnable_threads_of_others_are_the_machines_less_this_processs(tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("1.92 1.60 1.41 5/213 40123\n")
    tasks = tmp_path / "task"
    # this process: 2 threads running, one asleep; a thread name with ") R (" in it must not fool the parse
    for tid, name, state in [(101, "python", "R"), (102, "pt_main) R (x", "S"), (103, "python", "R")]:
        (tasks / str(tid)).mkdir(parents=True)
        (tasks / str(tid) / "stat").write_text(stat_line(tid, name, state))
    assert cores.running_threads(tasks) == 2
    assert cores.busy_elsewhere(readings=3, interval_s=0, loadavg=loadavg, tasks=tasks) == 3  # 5 - 2
    loadavg.write_text("0.01 0.02 0.00 1/213 40123\n")  # this one alone (a reading may lag: never below 0)
    assert cores.busy_elsewhere(readings=1, interval_s=0, loadavg=loadavg, tasks=tasks) == 0


def test_nothing_is_said_where_the_machine_cannot_be_read(tmp_path, monkeypatch):
    assert cores.busy_elsewhere(loadavg=tmp_path / "absent", tasks=tmp_path) is None
    monkeypatch.setattr(cores, "busy_elsewhere", lambda: None)
    assert cores.crowded_cores(64) is None


def test_one_thread_reads_nothing(monkeypatch):
    monkeypatch.setattr(cores, "busy_elsewhere", lambda: pytest.fail("one thread waits for nobody: nothing to read"))
    assert cores.crowded_cores(1) is None


@pytest.mark.skipif(not Path("/proc/loadavg").exists(), reason="Linux's /proc")
def test_a_busy_process_is_counted_on_this_machine():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # started and spinning
        assert cores.busy_elsewhere(readings=5, interval_s=0.02) >= 1
    finally:
        spinner.kill()
        spinner.wait()


def test_a_run_warns_before_training_with_torchs_thread_count(tiny_data, monkeypatch, caplog):
    import torch

    from recbole_umi import quick_start
    from recbole_umi.checkpoint import SafeCheckpointTrainer
    from tests.conftest import tiny_config

    asked = []
    monkeypatch.setattr(quick_start, "crowded_cores", lambda threads: asked.append(threads) or "crowded, said once")
    real_train_epoch = SafeCheckpointTrainer._train_epoch

    def train_epoch(self, *args, **kwargs):
        assert "crowded, said once" in caplog.text, "training began before the warning"
        return real_train_epoch(self, *args, **kwargs)

    monkeypatch.setattr(SafeCheckpointTrainer, "_train_epoch", train_epoch)
    with caplog.at_level(logging.WARNING):
        quick_start.run("UMI", "tiny", config_dict=tiny_config(tiny_data, epochs=1, state="WARNING"))  # tiny: ERROR
    assert asked == [torch.get_num_threads()]
    assert [r.levelno for r in caplog.records if r.getMessage() == "crowded, said once"] == [logging.WARNING]
