"""A process target that only waits (light to import: torch.multiprocessing's spawned
processes import the module of their target)."""

import time


def sleep_long(_rank: int) -> None:
    time.sleep(120)
