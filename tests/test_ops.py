"""``towers.ops``: the custom operations give torch's own values and gradients, eager and
compiled, and compiled code calls them where they are chosen (on the CPU: lookups on two or
more threads, the rectifier always)."""

import pytest
import torch
import torch.nn.functional as F

from recbole_umi.towers import ops


def traced_graph(function, *args) -> str:
    """The FX graph dynamo traces from ``function`` (run once, uncompiled, by the backend)."""
    graphs = []

    def capture(graph_module, example_inputs):
        graphs.append(str(graph_module.graph))
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


def test_dropout_keeps_the_entries_whose_uniform_draw_is_at_least_p_scaled():
    """Known answer: from a seed, the mask is ``torch.rand_like(x) >= p`` drawn from that seed;
    kept entries times 1 / (1 - p) (as inductor's dropout), the gradient the same mask and scale."""
    dropout = ops.Dropout(0.25)
    x = torch.arange(1.0, 13.0).view(3, 4).requires_grad_()
    torch.manual_seed(3)
    keep = torch.rand(3, 4) >= 0.25
    assert 0 < keep.sum() < 12  # this seed both keeps and drops entries
    torch.manual_seed(3)
    got = dropout(x)
    assert torch.equal(got, torch.where(keep, x.detach() * (1 / 0.75), 0.0))
    (grad,) = torch.autograd.grad((got * torch.full((3, 4), 2.0)).sum(), x)
    assert torch.equal(grad, torch.where(keep, torch.tensor(2.0 * (1 / 0.75)), 0.0))


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


def test_dropout_draws_float32_uniforms_for_half_precision_inputs():
    """bfloat16 uniforms take about 1,800 values, which would shift the keep rate; the draws
    are float32 whatever the input's precision (the same mask as for the float32 input)."""
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
