"""Warn when torch's threads outnumber the cores that other processes leave free.

A training step is hundreds of small operations, and each one that torch splits over its
threads ends when the last of them is done. When other processes keep the cores busy, one
of those threads waits for the scheduler's next turn at every operation: an epoch of UMI on
ml-100k took 52 s with torch's default of 2 threads beside two busy training processes on
2 cores, against 1.3 s with 1 thread (README, "Large data and several processes"). Nothing
fails; the run is only many times slower, so :func:`crowded_cores` says so before training
(``recbole_umi.run`` logs it as a warning).

The other processes are counted from ``/proc/loadavg``'s runnable threads at this moment,
less this process's own (Linux; elsewhere nothing is said), the median of a few readings so
that a process that runs for an instant is not counted.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

__all__ = ["crowded_cores", "busy_elsewhere", "running_threads", "crowding_message"]

LOADAVG = Path("/proc/loadavg")
TASKS = Path("/proc/self/task")


def busy_elsewhere(readings: int = 5, interval_s: float = 0.02, loadavg: Path = LOADAVG,
                   tasks: Path = TASKS) -> int | None:
    """Threads of other processes runnable now: the median over ``readings`` of
    ``/proc/loadavg``'s runnable count (its fourth field, ``running/total``) less this
    process's running threads (``/proc/self/task/*/stat``: this one, which reads, and torch's
    threads still spinning after an operation). None where the files cannot be read."""
    counts = []
    for reading in range(readings):
        if reading:
            time.sleep(interval_s)
        try:
            running = int(loadavg.read_text().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return None
        counts.append(running - running_threads(tasks))
    return max(0, round(statistics.median(counts)))


def running_threads(tasks: Path = TASKS) -> int:
    """This process's threads in the running state (``R``), at least 1 (the caller)."""
    running = 0
    for task in tasks.glob("*/stat"):
        try:
            stat = task.read_text()
        except OSError:  # ended meanwhile
            continue
        state_at = stat.rindex(")") + 2  # the state follows "(name) "; a name may hold ")"
        running += stat[state_at:state_at + 1] == "R"
    return max(1, running)


def crowding_message(threads: int, cores: int, busy: int) -> str | None:
    """The warning for ``threads`` torch threads on ``cores`` cores of which other
    processes keep ``busy`` running; None where they fit (or torch uses one thread, which
    waits for nobody)."""
    if threads <= 1 or threads + busy <= cores:
        return None
    free = max(1, cores - busy)
    return (f"torch uses {threads} threads, but other processes keep {busy} of this machine's {cores} cores busy: "
            "every operation waits for a thread they keep off its core (an epoch of UMI on ml-100k took 40x "
            f"longer). Set OMP_NUM_THREADS={free} (the cores left free) or run one training at a time.")


def crowded_cores(threads: int) -> str | None:
    """:func:`crowding_message` for this machine now (the cores this process may use);
    None where it is fine or the other processes cannot be counted. One thread waits for
    nobody: nothing is read."""
    if threads <= 1:
        return None
    busy = busy_elsewhere()
    if busy is None:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return crowding_message(threads, cores, busy)
