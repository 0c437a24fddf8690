"""``towers.inductor_fix``: inductor keeps a kernel's threads on its outer loops where a
vectorized outer loop is narrower than one vector, and still moves them inward where the
outer loops really are short; compiled code so threaded gives eager's values."""

import re

import pytest
import sympy
import torch

from recbole_umi.towers.inductor_fix import fix_parallel_depth


@pytest.fixture(scope="module")
def cpp():
    """Inductor's C++ code generation, fixed (imported when a test runs: 1.5 s, not at collection)."""
    from torch._inductor.codegen import cpp

    assert fix_parallel_depth()
    assert fix_parallel_depth()  # a second call patches nothing more
    assert not getattr(cpp.LoopNest.max_parallel_depth.__wrapped__, "fixed_by_recbole_umi", False)
    return cpp


def nest(cpp, *levels: tuple[int, int, bool]):
    """A loop nest of ``(size, step, is_reduction)`` levels, outermost first, with sizes as
    inductor gives them (sympy integers)."""
    return cpp.LoopNest([cpp.LoopLevel(size=sympy.Integer(size), steps=sympy.Integer(step), is_reduction=reduction)
                         for size, step, reduction in levels])


def test_a_loop_narrower_than_a_vector_keeps_the_threads_outside(cpp):
    """1,024 rows of 8 floats vectorized 16 at a time, summed over 10 positions: torch's count
    of the outer steps, 1024 * (8 // 16) = 0, moves the threads onto the 10 positions (a team
    forked per row); rounded up, 1,024 outer steps keep them on the rows."""
    levels = ((1024, 1, False), (8, 16, False), (10, 1, True))
    original = cpp.LoopNest.max_parallel_depth.__wrapped__
    assert original(nest(cpp, *levels)) == cpp.ParallelDepth(parallel_depth=1, start_depth=2)
    assert nest(cpp, *levels).max_parallel_depth() == cpp.ParallelDepth(parallel_depth=2, start_depth=0)


def test_short_outer_loops_still_give_their_threads_to_a_long_reduction(cpp):
    """2 rows of a 100,000-long sum: 2 * 300 < 100,000, so the threads go to the sum (torch's
    decision, which the rounding does not change); and outer loops torch keeps stay kept."""
    assert nest(cpp, (2, 1, False), (100_000, 1, True)).max_parallel_depth() == cpp.ParallelDepth(1, 1)
    assert nest(cpp, (4, 16, False), (100_000, 1, True)).max_parallel_depth() == cpp.ParallelDepth(1, 1)
    assert nest(cpp, (1024, 1, False), (10, 1, True)).max_parallel_depth() == cpp.ParallelDepth(1, 0)


def test_a_symbolic_outer_size_keeps_the_threads_outside(cpp):
    """An outer loop of symbolic size beside one narrower than a vector: torch's count, s0 * 0,
    is the number 0 and moves the threads; rounded up it is s0, no number, and they stay out."""
    levels = [cpp.LoopLevel(size=sympy.Symbol("s0", positive=True, integer=True), steps=sympy.Integer(1)),
              cpp.LoopLevel(size=sympy.Integer(8), steps=sympy.Integer(16)),
              cpp.LoopLevel(size=sympy.Integer(100_000), steps=sympy.Integer(1), is_reduction=True)]
    assert cpp.LoopNest.max_parallel_depth.__wrapped__(cpp.LoopNest(list(levels))).start_depth == 2
    assert cpp.LoopNest(levels).max_parallel_depth() == cpp.ParallelDepth(parallel_depth=2, start_depth=0)


def test_compiled_sum_is_threaded_over_rows_and_gives_eagers_values(cpp):
    """A 1024 x 10 x 4 tensor summed over its 10 positions, compiled at 2 threads (a fresh
    compile): the kernel's parallel region encloses its loops instead of sitting inside the
    loop over rows, and the sums are eager's."""
    from torch._inductor import config as inductor_config
    from torch._inductor import cpu_vec_isa
    from torch._inductor.utils import run_and_get_code

    isa = cpu_vec_isa.pick_vec_isa()
    if not isa or isa.nelements() <= 4:
        pytest.skip("no vectors wider than the 4 floats summed here: no loop narrower than a vector")
    x = torch.randn(1024, 10, 4, generator=torch.Generator().manual_seed(0))
    torch._dynamo.reset()
    with inductor_config.patch({"cpp.threads": 2, "fx_graph_cache": False, "cpp_wrapper": False}):
        out, sources = run_and_get_code(torch.compile(lambda t: t.sum(1)), x)
    torch._dynamo.reset()
    torch.testing.assert_close(out, x.sum(1))
    kernel = re.search(r'extern "C"[^{]*\{(.*?)\n\}', "\n".join(sources), re.S).group(1)
    assert "#pragma omp parallel" in kernel
    assert kernel.index("#pragma omp parallel") < kernel.index("for(")
