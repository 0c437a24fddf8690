"""Operations the towers take from here instead of torch's own, where torch's own is slow on
the CPU: the rows of an embedding table (:func:`lookup`), a bias-free map of them
(:func:`mapped_lookup`), a rectifier (:class:`ReLU`), dropout (:class:`Dropout`) and a causal
attention mask (:func:`causal_attention_mask`).

On the CPU the lookup and the rectifier run as custom ops (``torch.library``): autograd calls
one op each way, and under ``torch.compile`` inductor calls them whole instead of generating
code of its own (the lookup on 2 or more threads), which on the CPU is slow for two things
these avoid (docs/benchmarks.md, "Two slow kernels of inductor's"):

- an embedding's gradient, a scatter of the rows' gradients into the table: on two or more
  threads inductor writes it with an atomic add per element (1.4 ms for UMI's history at
  batch 1024, against 0.3 ms for ``index_add_``);
- a saved bool mask: a compiled rectifier stores where its input was negative, for the
  backward pass, and inductor's vectorised store of bool values is slow on AVX2 processors
  (1.3 ms for 82,000 values, against 0.09 ms eager); :class:`ReLU` saves its output instead.

:class:`Dropout` runs as a custom op on the CPU, eager and compiled, for a third: torch draws
dropout's mask on the CPU one Bernoulli variate at a time (``bernoulli_``, about 10 ns an
entry at 1 thread, a quarter of the transformer encoders' compiled step at T = 50), float32
uniform variates 3.5x faster (docs/benchmarks.md, "Dropout masks from uniform draws"), and
64-bit random words, cut into four 16-bit draws each, faster again ("oneDNN maps, GELU and
tanh"). And
compiled, :func:`causal_attention_mask` is computed whole, by a custom op, before the
attention's softmax reads it: fused into the softmax, inductor computes it anew for every
head and row from the history's ids, and the kernel it generates for the two on the CPU is
about 4x slower than the softmax of a given mask (docs/benchmarks.md, "An attention mask
computed whole").

Three more take the place of inductor's code in the encoders' compiled steps on the CPU
(docs/benchmarks.md, "oneDNN maps, GELU and tanh"): :class:`Linear` computes the products
that widen or keep the width with oneDNN, which on the AVX2 processors here is up to 1.7x
faster than the BLAS that inductor and torch call for the narrow maps of d = 32-128
(``B T x d`` by ``d x 4d``); :func:`gelu` runs torch's own GELU kernels instead of the erf
inductor would generate; :class:`Tanh` is computed from one exponential, its gradient from
its output, instead of torch's slower tanh.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["lookup", "mapped_lookup", "ReLU", "Dropout", "Linear", "Tanh", "tanh", "gelu", "causal_attention_mask"]


@torch.library.custom_op("recbole_umi::lookup", mutates_args=())
def _lookup(weight: torch.Tensor, ids: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """Rows of an embedding table by ``index_select`` (``padding_idx`` -1: none)."""
    return weight.index_select(0, ids.reshape(-1)).view(*ids.shape, weight.size(1))


@_lookup.register_fake
def _(weight, ids, padding_idx):
    return weight.new_empty(*ids.shape, weight.size(1))


@torch.library.custom_op("recbole_umi::lookup_backward", mutates_args=())
def _lookup_backward(grad: torch.Tensor, ids: torch.Tensor, rows: int, padding_idx: int) -> torch.Tensor:
    """The table's gradient of :func:`_lookup`: ``index_add_``, the padding row's zeroed."""
    grad = grad.reshape(-1, grad.size(-1))
    weight_grad = grad.new_zeros(rows, grad.size(1)).index_add_(0, ids.reshape(-1), grad)
    if padding_idx >= 0:
        weight_grad[padding_idx] = 0
    return weight_grad


@_lookup_backward.register_fake
def _(grad, ids, rows, padding_idx):
    return grad.new_empty(rows, grad.size(-1))


def _lookup_setup(ctx, inputs, output):
    weight, ids, padding_idx = inputs
    ctx.save_for_backward(ids)
    ctx.rows, ctx.padding_idx = weight.size(0), padding_idx


def _lookup_gradient(ctx, grad):
    (ids,) = ctx.saved_tensors
    return _lookup_backward(grad, ids, ctx.rows, ctx.padding_idx), None, None


_lookup.register_autograd(_lookup_gradient, setup_context=_lookup_setup)


@torch.compiler.assume_constant_result
def _threads() -> int:
    """torch's CPU threads, read once when a compiled function is traced (dynamo cannot trace
    ``torch.get_num_threads``); inductor fixes its kernels' threads at that moment too."""
    return torch.get_num_threads()


def lookup(table: nn.Embedding | torch.Tensor, ids: torch.Tensor, padding_idx: int | None = None) -> torch.Tensor:
    """``table(ids)``: on the CPU through ``index_select`` and ``index_add_`` (two custom ops),
    1.4x faster forward and backward eager than ``F.embedding`` at 1 and 2 threads, and 1.4x
    faster compiled on 2 or more threads than inductor's own kernels (whose backward is an
    atomic scatter there; ``bench/bench_small_ops.py``); the same values and
    first-order gradients (the padding row's zero; no double backward, which nothing here
    takes). Compiled on 1 thread, on other devices and for tables with ``max_norm``,
    ``scale_grad_by_freq`` or ``sparse``, ``F.embedding`` itself: inductor's own kernels are
    1.9x faster on 1 thread, the experiments' setting.

    Args:
        table: an ``nn.Embedding``, or the rows of a table as a tensor (``n x d``).
        ids: row numbers.
        padding_idx: for a tensor ``table``, the row (0 or more) whose gradient is kept at
            zero (None: none); an ``nn.Embedding`` has its own.

    Shapes: ``ids`` any ``S`` -> ``S x d``.
    """
    if isinstance(table, nn.Embedding):
        if table.max_norm is not None or table.scale_grad_by_freq or table.sparse:
            return table(ids)
        table, padding_idx = table.weight, table.padding_idx
    elif padding_idx is not None and padding_idx < 0:
        raise ValueError(f"padding_idx must be a row number (0 or more) or None, got {padding_idx}")
    if ids.device.type != "cpu" or (torch.compiler.is_compiling() and _threads() == 1):
        return F.embedding(ids, table, padding_idx)
    return _lookup(table, ids, -1 if padding_idx is None else padding_idx)


def mapped_lookup(table: nn.Embedding, ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.linear(table(ids), weight)``, a bias-free map of the rows, through the table's rows
    mapped first where the table has fewer rows than ``ids`` has entries (ml-1m's 3,261 items
    against batch 1024 x T = 10 history positions: 3.1x less arithmetic, and the weight's
    gradient a product over the table's rows instead of the history's, which for a narrow map
    is the slow orientation of the matrix product). The same values and gradients up to float
    rounding where the table's padding row is zero (``nn.Embedding``'s default and the towers'
    initialisation; it receives no gradient, so it stays zero) or the padded positions receive
    no gradient (as in the routing and UGANet, which mask them): the padding row receives none
    either way, and the map none from the padded positions. Under autocast the rows are mapped
    after the lookup, as before, so that no table-sized gradient is summed in half precision.

    Shapes: ``ids`` any ``S``, ``weight`` ``out x d`` -> ``S x out``.
    """
    if table.num_embeddings >= ids.numel() or table.max_norm is not None or table.scale_grad_by_freq \
            or table.sparse or torch.is_autocast_enabled(ids.device.type):
        return F.linear(lookup(table, ids), weight)
    return lookup(F.linear(table.weight, weight), ids, table.padding_idx)


@torch.library.custom_op("recbole_umi::relu", mutates_args=())
def _relu(x: torch.Tensor) -> torch.Tensor:
    """``max(x, 0)``."""
    return torch.relu(x)


@_relu.register_fake
def _(x):
    return torch.empty_like(x)


@torch.library.custom_op("recbole_umi::relu_backward", mutates_args=())
def _relu_backward(grad: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """The gradient of :func:`_relu` from its output: ``grad`` where the output is positive."""
    return torch.ops.aten.threshold_backward(grad, output, 0)


@_relu_backward.register_fake
def _(grad, output):
    return torch.empty_like(grad)


def _relu_setup(ctx, inputs, output):
    ctx.save_for_backward(output)


def _relu_gradient(ctx, grad):
    (output,) = ctx.saved_tensors
    return _relu_backward(grad, output)


_relu.register_autograd(_relu_gradient, setup_context=_relu_setup)


class ReLU(nn.ReLU):
    """``nn.ReLU``, which compiled on the CPU runs as a custom op that keeps its output for the
    backward pass (the module docstring says why); ``torch.relu`` otherwise. The same values
    and gradients (a gradient of 0 where the input is exactly 0, as ``torch.relu`` has).

    Shapes: any -> the same.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()  # in place or not, the same values: the custom op computes out of place

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() and x.device.type == "cpu":
            return _relu(x)
        return torch.relu(x)


def _kept(x: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    """``x`` where ``keep``, times ``1 / (1 - p)`` (inductor's dropout arithmetic), 0 elsewhere,
    contiguous: dropout's output from its input and its gradient from the output's, one rule
    for both. The bool mask is read as its bytes (0 or 1): a product with a bool tensor first
    copies it to float (7.5 against 5.7 ms for the attention's 5.1M probabilities at 1 thread)."""
    return x.mul(keep.view(torch.uint8)).mul_(1.0 / (1.0 - p)).contiguous()


DRAWS_PER_WORD = 4  # a 64-bit random word holds four 16-bit draws
DRAW_VALUES = 2**16


def _dropped_share(p: float) -> float:
    """``p`` rounded to a multiple of 2^-16: the share of the 65,536 draws that drop an entry."""
    return round(p * DRAW_VALUES) / DRAW_VALUES


def _threshold(p: float) -> int:
    """The signed 16-bit draw at and above which an entry is kept (32768, above every draw,
    where ``p`` rounds to 1: none kept)."""
    return round(p * DRAW_VALUES) - DRAW_VALUES // 2


@torch.library.custom_op("recbole_umi::random_words", mutates_args=("words",))
def _random_words(words: torch.Tensor, after: torch.Tensor) -> None:
    """Fills the int64 tensor ``words`` with random 64-bit words, every bit uniform (torch's
    generator, as eager). A custom op because dynamo cannot trace ``Tensor.random_`` (the
    compiled step would break into a graph around every dropout) and the functional
    ``torch.randint`` draws 4x slower; one that mutates its argument, so that compiled code
    keeps every call whose words something reads (equal calls of a pure op would be merged
    into one; a call whose words nothing reads is dropped compiled, where eager code would
    still advance the generator: every caller here reads them). ``after`` (the
    dropout's input), read by nothing, makes the draw wait for it, so that compiled code draws
    the dropouts of one chain of computation (an encoder's layers, one after another) in the
    order eager code does, where inductor may otherwise move a draw that needs no input ahead
    of another one (it did in RecBole's SASRec with its last layer at one position,
    ``model.base._sasrec_forward``: the same masks in another order). The loss's uniform
    negatives wait for the interests the same way (:func:`randint_after`). Dropouts
    of branches that do not depend on each other can still be reordered compiled: the same
    distribution, other masks than eager from a seed."""
    words.random_(-(2**63), None)


@_random_words.register_fake
def _(words, after):
    return None


@torch.library.custom_op("recbole_umi::random_integers", mutates_args=("out",))
def _random_integers(out: torch.Tensor, low: int, high: int, after: torch.Tensor) -> None:
    """Fills ``out`` with integers uniform in ``[low, high)``, as ``torch.randint(low, high,
    out.shape)`` draws them (torch's ``random_``, which randint calls), once ``after`` is
    computed (:func:`_random_words`)."""
    out.random_(low, high)


@_random_integers.register_fake
def _(out, low, high, after):
    return None


def randint_after(low: int, high: int, size: tuple[int, ...], after: torch.Tensor, device=None) -> torch.Tensor:
    """``torch.randint(low, high, size)``: the same draws, taken once ``after`` is computed,
    so that compiled code draws them where eager code does (after ``after``; without it,
    inductor may move a draw that needs no input ahead of others, as :func:`_random_words`
    says). ``int64``."""
    out = torch.empty(size, dtype=torch.int64, device=device)
    _random_integers(out, low, high, after.detach())
    return out


def _dropout_draws(x: torch.Tensor) -> torch.Tensor:
    """Random 64-bit words, every bit uniform, enough for one 16-bit draw per entry of ``x``,
    drawn once ``x`` is computed (:func:`_random_words`)."""
    words = torch.empty(-(-x.numel() // DRAWS_PER_WORD), dtype=torch.int64, device=x.device)
    _random_words(words, x.detach())  # detached: eager, no autograd step for an argument nothing reads
    return words


@torch.library.custom_op("recbole_umi::dropout", mutates_args=())
def _dropout(x: torch.Tensor, draws: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` with each entry kept where its draw, a signed 16-bit integer read from ``draws``
    (64-bit words, four draws each, in memory order), is at least ``_threshold(p)``, scaled by
    ``1 / (1 - p')`` (``p'``: ``p`` rounded as the draws round it, so that the output's
    expectation is ``x``), and the mask of the kept entries (``0 <= p < 1``), both contiguous.
    The draws come in from the caller's graph, where compiled code treats them as random
    numbers (two dropouts of one tensor are not merged into one, as a random op inside a
    custom op would be by the compiled graph's merging of equal calls)."""
    threshold = _threshold(p)
    if threshold >= DRAW_VALUES // 2:  # p rounds to 1: nothing kept (an int16 cannot hold the threshold)
        return torch.zeros_like(x, memory_format=torch.contiguous_format), x.new_zeros(x.shape, dtype=torch.bool)
    keep = draws.view(torch.int16)[: x.numel()].view(x.shape) >= threshold
    return _kept(x, keep, _dropped_share(p)), keep


@_dropout.register_fake
def _(x, draws, p):
    return x.new_empty(x.shape), x.new_empty(x.shape, dtype=torch.bool)


@torch.library.custom_op("recbole_umi::dropout_backward", mutates_args=())
def _dropout_backward(grad: torch.Tensor, keep: torch.Tensor, p: float) -> torch.Tensor:
    """The gradient of :func:`_dropout`: ``grad`` where kept, scaled as the output was."""
    if _threshold(p) >= DRAW_VALUES // 2:
        return torch.zeros_like(grad, memory_format=torch.contiguous_format)
    return _kept(grad, keep, _dropped_share(p))


@_dropout_backward.register_fake
def _(grad, keep, p):
    return grad.new_empty(grad.shape)


def _dropout_setup(ctx, inputs, output):
    ctx.save_for_backward(output[1])
    ctx.p = inputs[2]


def _dropout_gradient(ctx, grad, _keep_grad):
    (keep,) = ctx.saved_tensors
    return _dropout_backward(grad, keep, ctx.p), None, None


_dropout.register_autograd(_dropout_gradient, setup_context=_dropout_setup)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask, on the CPU, comes from 16-bit draws cut from 64-bit random
    words (an entry is kept where its draw is at least ``_threshold(p)``), 2.4x faster than
    torch's float32 uniform variates there and 8.4x faster than its Bernoulli draws, the
    mask applied in a custom op eager and compiled (compiled, inductor would store the mask for
    the backward pass as bool values, slowly: the module docstring). The distribution of
    ``nn.Dropout`` with ``p`` rounded to a multiple of 2^-16, ``p'`` (at most 7.7e-6 away; 0.5,
    the encoders' attention dropout, exactly; above 1 - 2^-17 every entry dropped), and from a
    seed the same masks eager and compiled (under ``compile_step``'s ``fallback_random``), but
    other masks than ``nn.Dropout`` draws from that seed. Kept entries are
    ``x * (1 / (1 - p'))``, multiplied as in inductor's dropout (eager ``F.dropout`` divides,
    which can differ in the last bit), so that the output's expectation is ``x``. Other
    devices, ``p`` of 0 or 1, evaluation and ``inplace``: ``F.dropout`` itself.

    Shapes: any -> the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p in (0.0, 1.0) or self.inplace or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training, self.inplace)
        return _dropout(x, _dropout_draws(x), float(self.p))[0]


def _compiled_on_cpu(x: torch.Tensor) -> bool:
    """Whether ``x`` is a float32 CPU tensor being traced for ``torch.compile`` outside autocast:
    where :class:`Linear`, :func:`gelu` and :class:`Tanh` take their own way."""
    return (torch.compiler.is_compiling() and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


ONEDNN_MIN_PRODUCTS = 2**22  # multiply-adds below which oneDNN's fixed cost outweighs its gain


def _onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``: by oneDNN (the op inductor calls for a frozen model's
    linear layers on the CPU, float32 throughout) where the map widens or keeps the width and
    has at least ``ONEDNN_MIN_PRODUCTS`` multiply-adds, where it was faster than torch's BLAS
    (1.1-1.7x at 1 thread, batch 128-1024 x T = 10-50, d = 32-128); else ``F.linear``, which
    was faster for narrowing maps (``4d -> d``) and small products
    (``bench/bench_small_ops.py --only=linear``)."""
    out_features, in_features = weight.shape
    x = x.contiguous()  # a contiguous result either way, as the ops' fake registrations say
    if out_features < in_features or x.numel() * out_features < ONEDNN_MIN_PRODUCTS:
        return F.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@torch.library.custom_op("recbole_umi::linear", mutates_args=())
def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear`` (by oneDNN where :func:`_onednn` takes it), contiguous."""
    return _onednn(x, weight, bias)


@_linear.register_fake
def _(x, weight, bias):
    return x.new_empty(*x.shape[:-1], weight.size(0))


@torch.library.custom_op("recbole_umi::linear_backward", mutates_args=())
def _linear_backward(grad: torch.Tensor, x: torch.Tensor,
                     weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradients of :func:`_linear` for ``x`` (``grad @ weight``, by oneDNN where
    :func:`_onednn` takes it), the weight and the bias (the last also where there is none: the
    caller drops it), contiguous."""
    flat = grad.reshape(-1, grad.size(-1))
    return (_onednn(grad, weight.t().contiguous(), None), flat.t().mm(x.reshape(-1, x.size(-1))), flat.sum(0))


@_linear_backward.register_fake
def _(grad, x, weight):
    return x.new_empty(x.shape), weight.new_empty(weight.shape), weight.new_empty(weight.size(0))


def _linear_setup(ctx, inputs, output):
    x, weight, bias = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None


def _linear_gradient(ctx, grad):
    x, weight = ctx.saved_tensors
    grad_x, grad_weight, grad_bias = _linear_backward(grad, x, weight)
    return grad_x, grad_weight, grad_bias if ctx.has_bias else None


_linear.register_autograd(_linear_gradient, setup_context=_linear_setup)

ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class Linear(nn.Linear):
    """``nn.Linear`` (the same parameters and state dict) whose map, compiled on the CPU in
    float32, runs in two custom ops, forward and backward, which compute the products that
    widen or keep the width by oneDNN (:func:`_onednn`: the forward pass of d -> d and d -> 4d
    maps, the input's gradient of d -> d and 4d -> d ones; the weight's gradient is one matrix
    product, as torch's): on the narrow maps of the encoders (``B T x d`` by ``d x 4d``,
    d = 32-128) up to 1.7x faster than the BLAS torch and inductor call (the module
    docstring). The same values and gradients up to float rounding. Eager, on other devices or
    precisions, under autocast or where torch was built without oneDNN: ``F.linear``.

    Shapes: ``... x in_features`` -> ``... x out_features``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if ONEDNN and _compiled_on_cpu(x) and self.weight.dtype == torch.float32:
            return _linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)


@torch.library.custom_op("recbole_umi::gelu", mutates_args=())
def _gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU, ``x Phi(x)``, by torch's kernel, contiguous."""
    return F.gelu(x.contiguous())


@_gelu.register_fake
def _(x):
    return x.new_empty(x.shape)


@torch.library.custom_op("recbole_umi::gelu_backward", mutates_args=())
def _gelu_backward(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The gradient of :func:`_gelu`, by torch's kernel, contiguous."""
    return torch.ops.aten.gelu_backward(grad.contiguous(), x.contiguous())


@_gelu_backward.register_fake
def _(grad, x):
    return grad.new_empty(grad.shape)


def _gelu_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _gelu_gradient(ctx, grad):
    (x,) = ctx.saved_tensors
    return _gelu_backward(grad, x)


_gelu.register_autograd(_gelu_gradient, setup_context=_gelu_setup)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU, ``x * 0.5 * (1 + erf(x / sqrt(2)))``: eager, that arithmetic itself
    (RecBole's ``gelu``, the same values); compiled on the CPU, torch's GELU kernels through a
    custom op, where inductor would evaluate the erf itself (a forward and backward pass with
    the map after it 1.1x slower: the module docstring), the same values up to float rounding.

    Shapes: any -> the same.
    """
    if _compiled_on_cpu(x):
        return _gelu(x)
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


TANH_SATURATES = 15.0  # |x| beyond which tanh(x) is +-1 in float32 (1 - tanh(15) = 1.9e-13)


class _TanhFromExp(torch.autograd.Function):
    """``tanh(x) = 1 - 2 / (exp(2x) + 1)``, its gradient ``1 - tanh(x)^2`` from the output."""

    @staticmethod
    def forward(ctx, x):
        y = 1.0 - 2.0 / (torch.exp(2.0 * x.clamp(-TANH_SATURATES, TANH_SATURATES)) + 1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1.0 - y * y)


class Tanh(nn.Tanh):
    """``nn.Tanh`` computed, compiled on the CPU, from one exponential (``1 - 2 / (exp(2x) +
    1)``, the input clamped to +-15 where tanh is +-1 in float32) with its gradient from the
    output: inductor fuses both into the kernels around them, forward and backward 1.7x faster
    than torch's tanh (the module docstring). The same values up to 2e-7, an absolute error
    (near 0 the relative one is larger: 1.3% at 1e-6; ``expm1`` does no better compiled, where
    inductor evaluates it as ``exp(x) - 1``); ``torch.tanh`` otherwise.

    Shapes: any -> the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tanh(x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """:class:`Tanh` as a function: compiled on the CPU from one exponential, ``torch.tanh``
    otherwise.

    Shapes: any -> the same.
    """
    if _compiled_on_cpu(x):
        return _TanhFromExp.apply(x)
    return torch.tanh(x)


def _attention_mask(item_seq: torch.Tensor) -> torch.Tensor:
    attention_mask = (item_seq != 0).unsqueeze(1).unsqueeze(2)
    attention_mask = torch.tril(attention_mask.expand((-1, -1, item_seq.size(-1), -1)))
    return torch.where(attention_mask, 0.0, -10000.0)


@torch.library.custom_op("recbole_umi::causal_attention_mask", mutates_args=())
def _whole_attention_mask(item_seq: torch.Tensor) -> torch.Tensor:
    """:func:`causal_attention_mask`, computed whole (a tensor of its own)."""
    return _attention_mask(item_seq)


@_whole_attention_mask.register_fake
def _(item_seq):
    return item_seq.new_empty(item_seq.size(0), 1, item_seq.size(-1), item_seq.size(-1), dtype=torch.float32)


def causal_attention_mask(item_seq: torch.Tensor) -> torch.Tensor:
    """Additive attention mask ``B x 1 x T x T``: 0 where position i may attend to j (j <= i
    and j not padding), -10000 elsewhere (RecBole's ``get_attention_mask``). Compiled on the
    CPU, a custom op computes it whole (the module docstring says why).

    Shapes: ``item_seq`` ``B x T`` -> ``B x 1 x T x T`` (float32).
    """
    if torch.compiler.is_compiling() and item_seq.device.type == "cpu":
        return _whole_attention_mask(item_seq)
    return _attention_mask(item_seq)
