"""Keep the memory that training frees, instead of handing it back to the system each batch.

glibc's ``malloc`` serves blocks above its mmap threshold (at most 32 MB) with a fresh
``mmap`` and returns them with ``munmap`` when freed. A training step that allocates
tensors of that size (T = 50, K = 6 and 128 hidden units at batch 1024: 40 MB each) then
pays, every batch, for the kernel to map and zero their pages again. On the synthetic
benchmark an epoch of UMI spent 71 s of 283 s in the kernel; with the memory kept, 2 s of
192 s (docs/benchmarks.md). The process's memory then stays at its peak: PyTorch's own GPU
allocator works that way too.

:func:`keep_freed_memory` tells glibc (``mallopt``) to serve every block from its heap and
keep what is freed; :func:`as_configured` calls it where the setting ``keep_freed_memory`` is
on (the default): ``recbole_umi.run`` before training, and the step benchmarks of ``bench/``,
which measure what training does. It changes the whole process from then on. A C library
other than glibc is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["keep_freed_memory", "as_configured"]

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
KEEP_UP_TO = 2**31 - 1  # bytes free at the top of the heap before glibc returns any (mallopt takes an int)


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed memory; False where this is not glibc."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, KEEP_UP_TO) == 1  # 1: done


def as_configured(config) -> bool:
    """:func:`keep_freed_memory` where ``config["keep_freed_memory"]`` is on; whether memory is
    now kept (False where the setting is off or the C library is not glibc)."""
    return bool(config["keep_freed_memory"]) and keep_freed_memory()
