"""``compile_step`` on RecBole's own sequential models: asked for only, their dropouts, linear
maps, GELU and causal mask made the plugin's, SINE's interest maps one product, SASRec's last
layer at one position, trained through RecBole's trainer; refused for the non-sequential ones.
(Split from test_compile_step.py, whose compiles took one test worker most of the suite's
time.)"""

import copy

import pytest
import torch

from recbole_umi import pipeline
from recbole_umi.checkpoints.trainer import get_trainer
from recbole_umi.config import Config
from recbole_umi.model.base import compiled_loss
from recbole_umi.settings import SettingsError
from recbole_umi.towers import ops
from recbole_umi.towers.ops import Dropout
from tests.conftest import tiny_config

def test_recbole_models_compile_through_the_pipeline_only_when_asked(tiny_data):
    config = Config("SASRec", "tiny", config_dict=tiny_config(tiny_data, train_neg_sample_args=None))
    *_, model = pipeline.build(config)
    assert compiled_loss(model) is None and "calculate_loss" not in model.__dict__
    assert not any(isinstance(module, Dropout) for module in model.modules())  # RecBole's own dropouts


def test_compile_step_gives_recbole_models_the_plugins_dropout_maps_gelu_and_mask(tiny_data):
    """Every dropout of RecBole's SASRec (the embeddings', and each layer's attention, output
    and feed-forward ones: 1 + 3 x n_layers) becomes the plugin's, its probability kept; its
    linear maps the plugin's, its feed-forward layers' GELU the plugin's, its causal attention
    mask the plugin's (the same mask), its forward the plugin's; the state dict's keys unchanged."""
    from recbole_umi.model import base

    settings = {"train_neg_sample_args": None, "hidden_dropout_prob": 0.3, "attn_dropout_prob": 0.2, "n_layers": 2}
    before = pipeline.build(Config("SASRec", "tiny", config_dict=tiny_config(tiny_data, **settings)))[-1]
    after = pipeline.build(Config("SASRec", "tiny", config_dict=tiny_config(tiny_data, compile_step=True, **settings)))[-1]
    kinds = [(name, type(module), module.p) for name, module in before.named_modules()
             if isinstance(module, torch.nn.Dropout)]
    assert len(kinds) == 1 + 3 * 2 and {p for *_, p in kinds} == {0.3, 0.2}
    assert [(name, type(module), module.p) for name, module in after.named_modules()
            if isinstance(module, torch.nn.Dropout)] == [(name, Dropout, p) for name, _, p in kinds]
    # and the linear maps (query, key, value, dense; dense_1 and dense_2 a layer) and the GELUs
    linears = [name for name, module in before.named_modules() if isinstance(module, torch.nn.Linear)]
    assert len(linears) == 6 * 2 and all(type(module) is torch.nn.Linear for module in before.modules()
                                         if isinstance(module, torch.nn.Linear))
    assert [name for name, module in after.named_modules() if type(module) is ops.Linear] == linears
    feed_forwards = [module for module in after.modules() if hasattr(module, "intermediate_act_fn")]
    assert len(feed_forwards) == 2 and all(module.intermediate_act_fn is ops.gelu for module in feed_forwards)
    assert after.state_dict().keys() == before.state_dict().keys()
    assert after.forward.__func__ is base._sasrec_forward and "forward" not in before.__dict__  # (the test below)
    # and the causal attention mask the plugin's way: the same mask, padding and ties of order included
    item_seq = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0], [0, 2, 0, 4, 0]])
    assert "get_attention_mask" not in before.__dict__
    for bidirectional in (False, True):
        assert torch.equal(after.get_attention_mask(item_seq, bidirectional),
                           before.get_attention_mask(item_seq, bidirectional))
    calls = []
    original = ops.causal_attention_mask
    try:
        ops.causal_attention_mask = lambda seq: calls.append(seq) or original(seq)
        after.get_attention_mask(item_seq)
        after.get_attention_mask(item_seq, bidirectional=True)
    finally:
        ops.causal_attention_mask = original
    assert len(calls) == 1  # the causal mask only
    copied = copy.deepcopy(after)  # the model still copies whole
    assert torch.equal(copied.get_attention_mask(item_seq), before.get_attention_mask(item_seq))


def with_and_without_compile_step(data, model_name: str, settings: dict):
    """RecBole's model built without and with compile_step (whose forward is replaced), the
    same weights, and the history and lengths of the first training batch."""
    _, train_data, _, _, before = pipeline.build(Config(model_name, "tiny", config_dict=tiny_config(data, **settings)))
    after = pipeline.build(Config(model_name, "tiny", config_dict=tiny_config(data, compile_step=True, **settings)))[-1]
    assert "forward" in after.__dict__ and "forward" not in before.__dict__
    after.load_state_dict(before.state_dict())
    batch = next(iter(train_data))
    return before, after, batch["item_id_list"], batch["item_length"]


def outputs_and_gradients(before, after, sequence, length, compiled: bool) -> list[tuple[torch.Tensor, dict]]:
    """Each model's user vectors of one batch (in training mode; ``after``'s forward compiled
    where ``compiled``) and the gradients of one fixed random weighting of them."""
    weights = None
    results = []
    for model in (before, after):
        model.train()
        model.zero_grad()
        forward = torch.compile(model.forward) if compiled and model is after else model
        output = forward(sequence, length)
        if weights is None:
            weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(0))
        (output * weights).sum().backward()
        results.append((output.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    return results


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.compile)])
def test_compile_step_gives_recbole_sine_its_interest_maps_in_one_product(tiny_data, compiled):
    """RecBole's SINE under compile_step computes its forward with the interests' maps in one
    product (base._sine_forward; compiled, its tanh from one exponential): from the same
    weights the same user vectors and the same gradients as RecBole's own forward, to float
    rounding, eager and compiled; other models keep theirs."""
    settings = {"train_neg_sample_args": None, "interest_size": 3, "prototype_size": 6}
    before, after, sequence, length = with_and_without_compile_step(tiny_data, "SINE", settings)
    (theirs, their_grads), (ours, our_grads) = outputs_and_gradients(before, after, sequence, length, compiled)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert our_grads.keys() == their_grads.keys() and "w_k_1" in our_grads
    for name, grad in their_grads.items():  # compiled, also to 1e-4 of the largest entry (w3's reach 260 here)
        atol = 1e-6 + (1e-4 * float(grad.abs().max()) if compiled else 0.0)
        torch.testing.assert_close(our_grads[name], grad, rtol=1e-4, atol=atol, msg=name)


def test_compile_step_gives_recbole_sasrec_its_last_layer_at_one_position(tiny_data):
    """RecBole's SASRec under compile_step computes its last layer at each row's last position
    only (base._sasrec_forward): from the same weights, without dropout, the same user vectors
    and gradients as RecBole's own forward, to float rounding, at three layers and rows of
    several lengths; with the last layer's dropouts, the same distribution (means and spread
    over draws). Eager: test_compile_encoders.py has the compiled loss equal this eager one,
    dropout included (a compile of its own here took 20-40 s of the suite)."""
    from recbole.model.sequential_recommender.sasrec import SASRec

    settings = {"train_neg_sample_args": None, "n_layers": 3, "hidden_size": 16, "inner_size": 24,
                "hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0}
    before, after, sequence, length = with_and_without_compile_step(tiny_data, "SASRec", settings)
    assert length.min() < length.max()  # rows of several lengths: their last positions differ
    (theirs, their_grads), (ours, our_grads) = outputs_and_gradients(before, after, sequence, length, False)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert our_grads.keys() == their_grads.keys()
    for name, grad in their_grads.items():
        torch.testing.assert_close(our_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)
    # with the last layer's three dropouts (the ones drawn otherwise): other masks, the same
    # distribution. Over 400 draws each entry's mean within 6 standard errors of RecBole's and
    # the spread summed over entries within 10% (either attention dropout left out: means move
    # past 6 standard errors). The maps' weights at 0.3, not 0.02, so that the layer's outputs
    # are not small beside their residuals.
    torch.manual_seed(4)
    for module in before.modules():
        if isinstance(module, torch.nn.Linear):
            module.weight.data.normal_(0, 0.3)
    after.load_state_dict(before.state_dict())
    for model in (before, after):
        for module in model.trm_encoder.layer[-1].modules():
            if isinstance(module, (torch.nn.Dropout, Dropout)):
                module.p = 0.3
    draws = []
    with torch.no_grad():
        for model in (before, after):
            torch.manual_seed(5)
            draws.append(torch.stack([model(sequence, length) for _ in range(400)]))
    assert not torch.equal(SASRec.forward(after, sequence, length), after(sequence, length))
    error = ((draws[0].var(0) + draws[1].var(0)) / 400).sqrt()
    assert ((draws[1].mean(0) - draws[0].mean(0)).abs() <= 6 * error).all()
    ratio = float(draws[1].var(0).sum() / draws[0].var(0).sum())  # the draws' spread, summed over entries
    assert 0.9 < ratio < 1.1


def test_recbole_trainer_trains_a_recbole_model_through_the_compiled_loss(tiny_data):
    config = Config("SASRec", "tiny", config_dict=tiny_config(tiny_data, eval_protocol="user_split", compile_step=True,
                                                               train_neg_sample_args=None))
    _, train_data, _, _, model = pipeline.build(config)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    loss, calls = compiled_loss(model), []
    # dynamo without inductor (whose compiling of every batch size took most of a minute here;
    # the test above compares inductor's SASRec with the eager one)
    loss.compiled = torch.compile(loss.loss, backend="eager")
    inner = loss.compiled
    loss.compiled = lambda *args, **kwargs: calls.append(1) or inner(*args, **kwargs)
    trainer._train_epoch(train_data, 0)
    assert len(calls) == len(train_data)  # every batch of the epoch


def test_recbole_non_sequential_models_refuse_it(tiny_data):
    config = Config("BPR", "tiny", config_dict=tiny_config(tiny_data, compile_step=True))
    with pytest.raises(SettingsError, match="'compile_step' = True: must be off for BPR"):
        pipeline.build(config)
