"""``towers.ops``: the custom operations give torch's own values and gradients, eager and
compiled, and compiled code calls them where they are chosen (on the CPU: lookups on two or
more threads, the rectifier always)."""

import pytest
import torch
import torch.nn.functional as F

from recbole_umi.towers import ops


def traced_graph(function, *args) -> str:
    """The FX graph dynamo traces from ``function`` (run once, uncompiled, by the backend), with
    its subgraphs (an autograd function's forward and backward)."""
    graphs = []

    def capture(graph_module, example_inputs):
        graphs.append(graph_module.print_readable(print_output=False))
        return graph_module

    torch._dynamo.reset()
    torch.compile(function, backend=capture)(*args)
    torch._dynamo.reset()
    return "\n".join(graphs)


@pytest.mark.parametrize("padding_idx", [0, None])
def test_lookup_gives_the_embedding_layers_values_and_gradients(padding_idx):
    """``lookup`` (index_select and index_add_) against ``nn.Embedding`` itself: the same rows,
    and the same gradient for the table, repeated ids summed and the padding row's zero."""
    torch.manual_seed(0)
    table = torch.nn.Embedding(7, 4, padding_idx=padding_idx)
    ids = torch.tensor([[3, 3, 0, 5], [6, 0, 0, 3]])
    upstream = torch.randn(2, 4, 4)
    rows = ops.lookup(table, ids)
    (rows * upstream).sum().backward()
    got = table.weight.grad.clone()
    table.weight.grad = None
    expected_rows = table(ids)
    (expected_rows * upstream).sum().backward()
    torch.testing.assert_close(rows, expected_rows)
    torch.testing.assert_close(got, table.weight.grad)
    assert torch.equal(got[3], upstream[0, 0] + upstream[0, 1] + upstream[1, 3])  # id 3 three times
    assert (got[0] == 0).all() == (padding_idx == 0)


def test_lookup_of_a_tensor_refuses_a_negative_padding_row():
    with pytest.raises(ValueError, match="padding_idx must be a row number"):
        ops.lookup(torch.randn(5, 3), torch.tensor([1, 2]), padding_idx=-1)


def test_lookup_of_a_tensor_keeps_its_padding_rows_gradient_at_zero():
    torch.manual_seed(0)
    rows = torch.randn(5, 3, requires_grad=True)
    ids = torch.tensor([[0, 2, 2], [4, 0, 1]])
    upstream = torch.randn(2, 3, 3)
    (ops.lookup(rows, ids, padding_idx=0) * upstream).sum().backward()
    expected = torch.zeros(5, 3).index_add_(0, ids.flatten(), upstream.reshape(-1, 3))
    expected[0] = 0
    torch.testing.assert_close(rows.grad, expected)


def test_compiled_lookups_take_the_custom_ops_on_two_threads_only(torch_threads):
    """Inductor scatters an embedding's gradient with atomic adds on 2+ threads (slow) and
    with plain vectorised adds on 1 (faster than ``index_add_``): the traced graph has the
    custom op exactly on 2 threads, and compiled it gives nn.Embedding's values and gradients."""
    torch.manual_seed(0)
    table = torch.nn.Embedding(50, 8, padding_idx=0)
    ids = torch.randint(0, 50, (16, 5))
    ids[:, -1] = 0
    upstream = torch.randn(16, 5, 8)

    def loss(i):
        return (ops.lookup(table, i) * upstream).sum()

    for n, custom in ((1, False), (2, True)):
        torch_threads(n)
        assert ("recbole_umi.lookup" in traced_graph(loss, ids)) == custom
    expected_rows = table(ids)
    (expected_rows * upstream).sum().backward()  # nn.Embedding's own
    expected = table.weight.grad.clone()
    table.weight.grad = None
    torch._dynamo.reset()
    rows = torch.compile(lambda i: ops.lookup(table, i))(ids)  # inductor, on 2 threads
    (rows * upstream).sum().backward()
    torch._dynamo.reset()
    torch.testing.assert_close(rows, expected_rows)
    torch.testing.assert_close(table.weight.grad, expected)
    assert (table.weight.grad[0] == 0).all()


@pytest.mark.parametrize("rows", [6, 40])
def test_mapped_lookup_equals_the_map_of_the_looked_up_rows(rows):
    """Mapped through the table (6 rows, fewer than the 12 ids) or through the ids (40 rows):
    ``F.linear(table(ids), weight)``'s values and its gradients for the table and the map,
    none for the padding row."""
    torch.manual_seed(0)
    table = torch.nn.Embedding(rows, 4, padding_idx=0)
    weight = torch.randn(3, 4, requires_grad=True)
    ids = torch.tensor([[1, 5, 0, 5], [2, 0, 0, 3], [5, 4, 1, 0]])
    upstream = torch.randn(3, 4, 3)
    got = ops.mapped_lookup(table, ids, weight)
    got_grads = torch.autograd.grad((got * upstream).sum(), [table.weight, weight])
    expected = F.linear(table(ids), weight)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), [table.weight, weight])
    torch.testing.assert_close(got, expected)
    for a, b in zip(got_grads, expected_grads):
        torch.testing.assert_close(a, b)
    assert (got_grads[0][0] == 0).all()


def test_relu_gives_torch_relus_values_and_gradients_eager_and_compiled():
    """The rectifier, with exact zeros among its inputs (gradient 0 there, as torch.relu's):
    compiled, the traced graph holds the custom op (which saves its output, not a bool mask)."""
    relu = ops.ReLU()
    x = torch.tensor([[-1.5, 0.0, 2.0], [0.5, -0.0, -3.0]], requires_grad=True)
    upstream = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    expected = torch.relu(x)
    (expected_grad,) = torch.autograd.grad((expected * upstream).sum(), x)
    assert torch.equal(expected_grad, torch.tensor([[0.0, 0.0, 3.0], [4.0, 0.0, 0.0]]))
    for function in (relu, torch.compile(relu)):
        got = function(x)
        (grad,) = torch.autograd.grad((got * upstream).sum(), x)
        assert torch.equal(got, expected) and torch.equal(grad, expected_grad)
    torch._dynamo.reset()
    assert "recbole_umi.relu" in traced_graph(relu, x)


def test_dropout_keeps_the_entries_whose_16_bit_draw_is_at_least_the_threshold_scaled():
    """Known answer: from a seed, 64-bit words drawn over their full range, cut into signed
    16-bit draws in memory order; an entry is kept where its draw is at least
    round(p * 65536) - 32768 (p = 0.25: -16384); kept entries times 1 / (1 - p) (as inductor's
    dropout), the gradient the same mask and scale."""
    dropout = ops.Dropout(0.25)
    x = torch.arange(1.0, 13.0).view(3, 4).requires_grad_()
    torch.manual_seed(3)
    words = torch.empty(3, dtype=torch.int64).random_(-(2**63), None)  # 12 entries: 3 words of 4 draws
    draws = [int(v) for v in words.view(torch.int16)]
    keep = torch.tensor([d >= -16384 for d in draws]).view(3, 4)
    assert 0 < keep.sum() < 12  # this seed both keeps and drops entries
    torch.manual_seed(3)
    got = dropout(x)
    assert torch.equal(got, torch.where(keep, x.detach() * (1 / 0.75), 0.0))
    (grad,) = torch.autograd.grad((got * torch.full((3, 4), 2.0)).sum(), x)
    assert torch.equal(grad, torch.where(keep, torch.tensor(2.0 * (1 / 0.75)), 0.0))


@pytest.mark.parametrize(("p", "threshold"), [(0.5, 0), (0.25, -16384), (0.1, 6554 - 32768), (0.9999, 65529 - 32768)])
def test_dropout_threshold_drops_p_rounded_to_a_multiple_of_two_to_the_minus_16(p, threshold):
    """Of the 65,536 equally likely draws, round(p * 65536) lie below the threshold."""
    assert ops._threshold(p) == threshold
    assert (threshold + 32768) / 65536 == pytest.approx(p, abs=2**-17)


def test_dropout_keeps_one_minus_p_of_the_entries_and_is_the_identity_in_evaluation():
    torch.manual_seed(0)
    dropout = ops.Dropout(0.3)
    x = torch.ones(400, 500)
    kept = float((dropout(x) != 0).float().mean())
    assert kept == pytest.approx(0.7, abs=0.005)  # 200,000 draws: the standard error is 0.001
    assert torch.equal(ops.Dropout(1.0)(x), torch.zeros_like(x))  # F.dropout's own cases
    assert torch.equal(ops.Dropout(0.0)(x), x)
    dropout.eval()
    assert torch.equal(dropout(x), x)


def test_compiled_dropout_draws_the_eager_masks_through_the_custom_op():
    """Under ``compile_step``'s ``fallback_random`` a compiled step draws the eager step's masks:
    the same values and gradients from one seed, the custom op in the traced graph (no mask
    stored by inductor's code)."""
    from recbole_umi.model.base import compiled

    dropout = ops.Dropout(0.5)
    x = torch.randn(6, 8, requires_grad=True)

    def function(x):  # the same tensor dropped twice: two masks, not one merged call
        return dropout(x).sin() + dropout(x).cos()

    results = []
    for f in (function, compiled(function)):
        torch.manual_seed(5)
        out = f(x)
        results.append((out, *torch.autograd.grad(out.sum(), x)))
    torch._dynamo.reset()
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
    torch.manual_seed(5)
    assert not torch.equal(dropout(x), dropout(x))
    twice = compiled(lambda x: (dropout(x), dropout(x)))(x)
    torch._dynamo.reset()
    assert not torch.equal(*twice)
    assert "recbole_umi.dropout" in traced_graph(function, x)


def test_dropout_draws_the_same_masks_for_half_precision_inputs():
    """The draws are 16-bit integers whatever the input's precision (bfloat16 uniforms, which
    take about 1,800 values, would shift the keep rate): the same mask as for float32."""
    dropout = ops.Dropout(0.1)
    x = torch.randn(300, 400)
    torch.manual_seed(2)
    kept = dropout(x) != 0
    torch.manual_seed(2)
    low = dropout(x.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16 and torch.equal(low != 0, kept)


def test_causal_attention_mask_known_answer_and_computed_whole_when_compiled():
    """0 where position i may attend to j (j <= i, j not padding), -10000 elsewhere; compiled,
    the custom op computes it (the same values)."""
    item_seq = torch.tensor([[4, 7, 0], [5, 0, 0]])
    allowed = torch.tensor([[[1, 0, 0], [1, 1, 0], [1, 1, 0]],
                            [[1, 0, 0], [1, 0, 0], [1, 0, 0]]], dtype=torch.bool).unsqueeze(1)
    expected = torch.where(allowed, 0.0, -10000.0)
    assert torch.equal(ops.causal_attention_mask(item_seq), expected)
    torch._dynamo.reset()
    assert torch.equal(torch.compile(ops.causal_attention_mask)(item_seq), expected)
    torch._dynamo.reset()
    assert "recbole_umi.causal_attention_mask" in traced_graph(ops.causal_attention_mask, item_seq)


def compiled_values_and_gradients(function, inputs, upstream):
    """``function``'s output and the gradients of ``(output * upstream).sum()`` for ``inputs``,
    eager and through inductor (a fresh cache each)."""
    results = []
    for f in (function, torch.compile(function)):
        torch._dynamo.reset()
        out = f(*inputs)
        results.append((out, *torch.autograd.grad((out * upstream).sum(), inputs)))
    torch._dynamo.reset()
    return results


@pytest.mark.parametrize("bias", [True, False])
def test_linear_compiled_by_onednn_gives_torch_linears_values_and_gradients(bias):
    """A ``B x T x d`` input through ``ops.Linear``: eager ``F.linear`` itself; compiled, the
    custom op (oneDNN) in the traced graph, and the same output and gradients for the input,
    the weight and the bias, up to float rounding."""
    torch.manual_seed(0)
    layer = ops.Linear(8, 20, bias=bias)
    x = torch.randn(4, 5, 8, requires_grad=True)
    upstream = torch.randn(4, 5, 20)
    params = [layer.weight] + ([layer.bias] if bias else [])

    def expected(x, *p):
        return F.linear(x, *p)

    def got(x, *p):
        return layer(x)

    assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))  # eager: torch's own
    (reference, *reference_grads), (eager, *_) = compiled_values_and_gradients(expected, [x, *params], upstream)
    _, (out, *grads) = compiled_values_and_gradients(got, [x, *params], upstream)
    torch.testing.assert_close(out, reference)
    assert len(grads) == len(reference_grads) == 1 + len(params)
    for a, b in zip(grads, reference_grads):
        torch.testing.assert_close(a, b)
    assert ("recbole_umi.linear" in traced_graph(got, x, *params)) == ops.ONEDNN
    assert state_dict_keys(ops.Linear(3, 2)) == state_dict_keys(torch.nn.Linear(3, 2))


def state_dict_keys(module):
    return list(module.state_dict())


def test_gelu_is_recboles_arithmetic_eager_and_torchs_kernel_compiled():
    """Eager, exactly ``x * 0.5 * (1 + erf(x / sqrt 2))`` (RecBole's GELU); compiled, the custom
    op (torch's GELU kernels) in the traced graph, with the same values and gradients up to
    float rounding; at 0 the value 0 and the gradient 1/2."""
    import math

    x = torch.tensor([-4.0, -1.0, 0.0, 0.5, 3.0, 10.0], requires_grad=True)
    upstream = torch.tensor([1.0, 2.0, 3.0, -1.0, 0.5, 1.0])
    formula = x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    assert torch.equal(ops.gelu(x), formula)
    (eager, *eager_grad), (compiled, *compiled_grad) = compiled_values_and_gradients(ops.gelu, [x], upstream)
    torch.testing.assert_close(compiled, formula)
    torch.testing.assert_close(compiled_grad[0], eager_grad[0])
    assert compiled[2] == 0 and compiled_grad[0][2] == 0.5 * upstream[2]
    assert "recbole_umi.gelu" in traced_graph(ops.gelu, x)


def test_tanh_compiled_from_one_exponential_is_tanh_to_2e_7_and_saturates_without_nan():
    """Compiled, ``1 - 2 / (exp(2x) + 1)`` with the input clamped at +-15: within 2e-7 of
    ``torch.tanh`` over [-30, 30], exactly +-1 with gradient 0 far out (no inf / inf), the
    gradient ``1 - tanh^2`` up to float rounding; eager, ``torch.tanh`` itself."""
    tanh = ops.Tanh()
    x = torch.cat([torch.linspace(-30.0, 30.0, 20001), torch.tensor([-1e4, 1e4, 0.0])]).requires_grad_()
    upstream = torch.ones_like(x)
    assert torch.equal(tanh(x), torch.tanh(x))
    (expected, expected_grad), (got, grad) = compiled_values_and_gradients(tanh, [x], upstream)
    assert torch.equal(expected, torch.tanh(x))
    assert float((got - expected).detach().abs().max()) <= 2e-7
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-6)
    assert got[-3] == -1 and got[-2] == 1 and got[-1] == 0
    assert grad[-3] == 0 and grad[-2] == 0 and grad[-1] == 1 and not grad.isnan().any()
    graph = traced_graph(tanh, x)
    assert "torch.exp" in graph and "torch.tanh" not in graph
