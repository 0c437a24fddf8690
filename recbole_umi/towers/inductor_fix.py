"""A fix to inductor's CPU code generation that ``compile_step`` applies (torch 2.13).

Inductor may move a kernel's threads from its outer loops onto its first inner reduction loop
when the outer loops have far fewer steps than that loop (``LoopNest.max_parallel_depth``). It
counts an outer loop's steps as ``size // step``, which is 0 for a vectorized loop narrower
than one vector (8 hidden units at 16 floats a vector, on a CPU with AVX-512): the outer
loops then seem to have no work, and the kernel opens an OpenMP parallel region inside its
serial outer loop, once per row. UMI's compiled step summed a 1024 x 10 x 8 gradient so, 1,024
thread-team forks per step, about a seventh of the step at 2 threads (docs/benchmarks.md, "A
thread team forked per row"). pytorch/pytorch#190928 counts the steps rounded up; this does
the same around torch's method: where it moved the threads inward, the move is checked again
with the steps rounded up and undone where it no longer holds.

Only the kernels' threading changes: at 1 thread inductor opens no parallel region (unless
``TORCHINDUCTOR_CPP_DYNAMIC_THREADS`` asks for one in every kernel), so its kernels are the
same with or without the fix; at more threads a reduction that was split over threads is
summed by one (the same values up to float rounding). The patch holds for the rest of the
process, for every ``torch.compile`` in it.
"""

from __future__ import annotations

import functools

__all__ = ["fix_parallel_depth"]

#: The factor of torch's heuristic (``LoopNest.max_parallel_depth``): threads move onto the
#: first inner loop when its steps exceed 300 times the outer loops'.
_INNER_OVER_OUTER = 300


def _steps(loop, rounded_up: bool):
    size, step = loop.size, loop.steps
    return -(-size // step) if rounded_up else size // step


def fix_parallel_depth() -> bool:
    """Patch ``torch._inductor.codegen.cpp.LoopNest.max_parallel_depth`` as the module says
    (once per process). Returns whether it is patched; False where torch has no such method."""
    try:
        import sympy
        from torch._inductor.codegen import cpp
    except ImportError:
        return False
    nest = getattr(cpp, "LoopNest", None)
    original = getattr(nest, "max_parallel_depth", None)
    if original is None or not hasattr(cpp, "ParallelDepth"):
        return False
    if getattr(original, "fixed_by_recbole_umi", False):
        return True

    @functools.wraps(original)
    def max_parallel_depth(self):
        depth = original(self)
        start = depth.start_depth
        if not start:
            return depth  # threads on the outer loops: rounding up could only keep them there
        outer_steps = sympy.Integer(1)
        for loop in self.loops[:start]:
            outer_steps *= _steps(loop, rounded_up=True)
        inner = self.loops[start]
        # torch moves only where both counts are numbers; rounded up, a symbolic outer size is
        # no longer multiplied by 0, so the threads stay outside (as upstream's rounding keeps them)
        moved = (isinstance(outer_steps, sympy.Integer)
                 and bool(outer_steps * _INNER_OVER_OUTER < _steps(inner, rounded_up=False)))
        return depth if moved else cpp.ParallelDepth(parallel_depth=start, start_depth=0)

    max_parallel_depth.fixed_by_recbole_umi = True  # functools.wraps keeps the original as __wrapped__
    nest.max_parallel_depth = max_parallel_depth
    return True
