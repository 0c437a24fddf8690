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


@pytest.mark.parametrize(("p", "threshold"), [(0.5, 0), (0.25, -16384), (0.1, 6554 - 32768), (0.9999, 65529 - 32768),
                                              (0.999995, 32768)])
def test_dropout_threshold_drops_p_rounded_to_a_multiple_of_two_to_the_minus_16(p, threshold):
    """Of the 65,536 equally likely draws, round(p * 65536) lie below the threshold (all of
    them where p rounds to 1)."""
    assert ops._threshold(p) == threshold
    assert (threshold + 32768) / 65536 == ops._dropped_share(p) == pytest.approx(p, abs=2**-17)


def test_dropout_whose_p_rounds_to_one_drops_every_entry():
    """p = 0.999995 rounds to 65,536 / 65,536: a threshold no 16-bit draw reaches (it would wrap
    around to -32768 in an int16 comparison and keep everything, scaled by 200,000)."""
    x = torch.ones(4, 6, requires_grad=True)
    out = ops.Dropout(0.999995)(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(out, torch.zeros(4, 6)) and torch.equal(grad, torch.zeros(4, 6))


def test_dropout_scales_by_the_rounded_p_so_the_expectation_is_the_input():
    """p = 0.3 drops 19,661 of 65,536 draws: kept entries are x / (1 - 19661 / 65536)."""
    torch.manual_seed(0)
    out = ops.Dropout(0.3)(torch.ones(200, 300))
    kept = out[out != 0]
    assert torch.equal(kept, torch.full_like(kept, 1.0 / (1.0 - 19661 / 65536)))
    assert float(out.mean()) == pytest.approx(1.0, abs=0.01)


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
    explained = torch._dynamo.explain(function)(x)  # the draws do not break the graph
    torch._dynamo.reset()
    assert explained.graph_count == 1 and explained.graph_break_count == 0


def test_compiled_dropout_of_a_permuted_input_gives_the_eager_values_and_gradients():
    """A batch-first GRU's output is a permuted view: compiled, the custom op's results must be
    laid out as its fake registration says (contiguous), or inductor fails in the backward."""
    from recbole_umi.model.base import compiled

    dropout = ops.Dropout(0.3)
    x = torch.randn(5, 4, 6).permute(1, 0, 2).requires_grad_()
    upstream = torch.randn(4, 5, 6)

    def function(x):
        return dropout(x) * 2.0

    results = []
    for f in (function, compiled(function)):
        torch.manual_seed(1)
        out = f(x)
        results.append((out, *torch.autograd.grad((out * upstream).sum(), x)))
    torch._dynamo.reset()
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


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


@pytest.mark.parametrize("onednn_from", [0, 2**62])  # every product by oneDNN, or none
@pytest.mark.parametrize("bias", [True, False])
def test_linear_compiled_gives_torch_linears_values_and_gradients(bias, onednn_from, monkeypatch):
    """``ops.Linear`` compiled (the custom ops in the traced graph), with every product by
    oneDNN or none, against ``F.linear``: the same output and gradients for the input, the
    weight and the bias up to float rounding, for a widening map (its forward by oneDNN) and a
    narrowing one (its input's gradient by oneDNN), a 2-D input, a permuted 3-D one (a
    batch-first GRU's output, not contiguous: the ops' results must be laid out as their fake
    registrations say, or inductor fails in the backward pass) and an input that needs no
    gradient. Eager: ``F.linear`` itself."""
    monkeypatch.setattr(ops, "ONEDNN_MIN_PRODUCTS", onednn_from)
    torch.manual_seed(0)
    for d_in, d_out in ((8, 20), (20, 8)):
        layer = ops.Linear(d_in, d_out, bias=bias)
        params = [layer.weight] + ([layer.bias] if bias else [])
        for x in (torch.randn(6, d_in), torch.randn(5, 4, d_in).permute(1, 0, 2)):
            x.requires_grad_()
            upstream = torch.randn(*x.shape[:-1], d_out)
            assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))  # eager: torch's own
            (reference, *reference_grads), _ = compiled_values_and_gradients(
                lambda x, *p: F.linear(x, *p), [x, *params], upstream)
            _, (out, *grads) = compiled_values_and_gradients(lambda x, *p: layer(x), [x, *params], upstream)
            torch.testing.assert_close(out, reference)
            assert len(grads) == len(reference_grads) == 1 + len(params)
            for a, b in zip(grads, reference_grads):
                torch.testing.assert_close(a, b)
        frozen = torch.randn(3, 7, d_in)  # needs no gradient: the parameters' alone
        _, (out, *grads) = compiled_values_and_gradients(lambda *p: layer(frozen), params, torch.ones(3, 7, d_out))
        torch.testing.assert_close(out, F.linear(frozen, layer.weight, layer.bias))
        torch.testing.assert_close(grads[0], torch.ones(21, d_out).t().mm(frozen.reshape(21, d_in)))
        assert ("recbole_umi.linear" in traced_graph(lambda x: layer(x), frozen)) == ops.ONEDNN
    assert list(ops.Linear(3, 2).state_dict()) == list(torch.nn.Linear(3, 2).state_dict())


def test_onednn_takes_the_products_that_widen_or_keep_the_width_and_are_large_enough():
    """Which products ``ops._onednn`` gives oneDNN, by the rule (counted by a stand-in)."""
    calls = []
    real = torch.ops.mkldnn._linear_pointwise

    def counting(x, weight, *rest):
        calls.append(tuple(weight.shape))
        return real(x, weight, *rest)

    cases = {(1024 * 50, 32, 128): True, (1024 * 50, 32, 32): True, (1024 * 50, 128, 32): False,
             (128 * 10, 32, 32): False, (4096, 32, 32): True, (4095, 32, 32): False}
    for (rows, d_in, d_out), onednn in cases.items():
        calls.clear()
        weight = torch.randn(d_out, d_in)
        x = torch.randn(rows, d_in)
        torch.ops.mkldnn._linear_pointwise = counting  # the op's name resolves at each call
        try:
            torch.testing.assert_close(ops._onednn(x, weight, None), F.linear(x, weight))
        finally:
            torch.ops.mkldnn._linear_pointwise = real
        assert (calls == [(d_out, d_in)]) == onednn, (rows, d_in, d_out)


def test_gelu_known_values_eager_and_compiled():
    """``x Phi(x)`` against values from the math library (float64), eager (RecBole's formula)
    and compiled (the custom op, torch's kernels, in the traced graph), gradients
    ``Phi(x) + x phi(x)``; a permuted input compiles through the backward pass."""
    import math

    points = [-4.0, -1.0, 0.0, 0.5, 1.0, 3.0, 10.0]
    x = torch.tensor(points, requires_grad=True)
    expected = torch.tensor([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in points])
    expected_grad = torch.tensor([0.5 * (1 + math.erf(v / math.sqrt(2))) + v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi)
                                  for v in points])
    for out, grad in compiled_values_and_gradients(ops.gelu, [x], torch.ones(len(points))):
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(grad, expected_grad)
    assert "recbole_umi.gelu" in traced_graph(ops.gelu, x)
    permuted = torch.randn(5, 4, 3).permute(1, 0, 2).requires_grad_()
    (a, ga), (b, gb) = compiled_values_and_gradients(ops.gelu, [permuted], torch.randn(4, 5, 3))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ga, gb)


def test_tanh_compiled_from_one_exponential_is_tanh_to_2e_7_and_saturates_without_nan():
    """Compiled, ``1 - 2 / (exp(2x) + 1)`` with the input clamped at +-15: within 2e-7 of tanh
    (float64) over [-30, 30], an absolute error, exactly +-1 with gradient 0 far out (no
    inf / inf), the gradient ``1 - tanh^2`` to float rounding; eager, ``torch.tanh`` itself."""
    tanh = ops.Tanh()
    x = torch.cat([torch.linspace(-30.0, 30.0, 20001), torch.tensor([-1e4, 1e4, 0.0])]).requires_grad_()
    truth = torch.tanh(x.detach().double())
    assert torch.equal(tanh(x), torch.tanh(x))
    _, (got, grad) = compiled_values_and_gradients(tanh, [x], torch.ones_like(x))
    got = got.detach()
    assert float((got.double() - truth).abs().max()) <= 2e-7
    torch.testing.assert_close(grad.double(), 1.0 - truth**2, rtol=1e-5, atol=1e-6)
    assert got[-3] == -1 and got[-2] == 1 and got[-1] == 0
    assert grad[-3] == 0 and grad[-2] == 0 and grad[-1] == 1 and not grad.isnan().any()
    graph = traced_graph(tanh, x)
    assert "torch.exp" in graph and "torch.tanh" not in graph


def test_draws_after_an_input_are_torchs_draws_and_compile_to_them():
    """``ops.randint_after`` draws what ``torch.randint`` draws from the same seed, eager and
    compiled after a dropout (the values only: inductor keeps this small function's order
    with ``torch.randint`` too). That they keep their order where inductor moved a draw
    needing no input: tests/test_compile_step.py, SASRecMatching's rows with dropout and
    sampled negatives (it failed with ``torch.randint``)."""
    from recbole_umi.model.base import compiled

    torch.manual_seed(0)
    expected = torch.randint(1, 9, (5, 4))
    torch.manual_seed(0)
    assert torch.equal(ops.randint_after(1, 9, (5, 4), torch.zeros(3)), expected)
    dropout = ops.Dropout(0.3)

    def function(x):
        states = dropout(x.exp())
        return states.sum(dim=1) + ops.randint_after(0, 1000, (states.size(0),), states).float()

    x = torch.randn(64, 32)
    outputs = []
    for f in (function, compiled(function)):
        torch.manual_seed(3)
        outputs.append(f(x))
    torch._dynamo.reset()
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-6, atol=1e-3)  # other draws: hundreds apart
