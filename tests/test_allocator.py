"""keep_freed_memory: a large block freed and allocated again costs no new page faults."""

import subprocess
import sys

import pytest

FAULTS = """
import resource
import torch
from recbole_umi.allocator import as_configured
def faults_of_a_fresh_block():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, over glibc's largest mmap threshold
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
def fewest_faults():
    # kept: the first few blocks may still grow the heap (torch asks for aligned blocks, a bit
    # larger than the freed one) until the freed chunks coalesce; then every block is reused
    return min(faults_of_a_fresh_block() for _ in range(10))
faults_of_a_fresh_block()  # the first time, the pages are new either way
default = fewest_faults()
# as the setting keep_freed_memory asks (run and the benchmarks call this); off changes nothing,
# so it is measured before keep, which changes the whole process
assert as_configured({"keep_freed_memory": False}) is False
off = fewest_faults()
assert as_configured({"keep_freed_memory": True}) is True
print(default, off, fewest_faults())
"""


def faults() -> list[int]:
    """The fewest page faults of a fresh 64 MiB block: glibc as by default, the setting off,
    then on, in one fresh process."""
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-1500:]
    return [int(count) for count in out.stdout.split()[-3:]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_memory_is_kept_and_reused_without_page_faults():
    default, off, keep = faults()
    # 64 MiB is 16,384 pages of 4 KiB: glibc maps them afresh for every block by default
    assert default > 4000
    assert off > 4000  # the setting off: glibc as by default
    assert keep < 100


def test_setting_is_checked():
    from recbole_umi.config import Config
    from recbole_umi.settings import SettingsError

    assert Config("UMI", "ml-100k", config_dict={"state": "ERROR"})["keep_freed_memory"] is True
    with pytest.raises(SettingsError, match="keep_freed_memory"):
        Config("UMI", "ml-100k", config_dict={"state": "ERROR", "keep_freed_memory": "sometimes"})


@pytest.mark.parametrize("keep", [True, False])
def test_run_applies_the_setting_before_training(tiny_data, monkeypatch, keep):
    """``recbole_umi.run`` hands its config to :func:`as_configured` once, before the first
    epoch (which is when large blocks start to be freed and allocated again)."""
    from recbole_umi import quick_start
    from recbole_umi.checkpoint import SafeCheckpointTrainer

    from tests.conftest import tiny_config

    calls = []
    monkeypatch.setattr(quick_start, "as_configured", lambda config: calls.append(config["keep_freed_memory"]))
    real_train_epoch = SafeCheckpointTrainer._train_epoch

    def train_epoch(self, *args, **kwargs):
        assert calls == [keep], "training began before the allocator's setting was applied"
        return real_train_epoch(self, *args, **kwargs)

    monkeypatch.setattr(SafeCheckpointTrainer, "_train_epoch", train_epoch)
    quick_start.run("UMI", "tiny", config_dict=tiny_config(tiny_data, epochs=1, keep_freed_memory=keep))
    assert calls == [keep]
