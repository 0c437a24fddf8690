"""``fused_optimizer``: RecBole's Adam and AdamW become torch's fused kernel (on by default),
other learners stay as RecBole builds them, and training with it gives the weights the
unfused optimizer gives, to float tolerance. ``recbole_umi.optimizer``'s direct step is
torch's fused step to the bit, and hands what it leaves out to torch's step."""

import copy

import pytest
import torch

from recbole_umi import optimizer as fused_optimizer
from recbole_umi import pipeline
from recbole_umi.optimizer import FusedAdam, FusedAdamW, with_fused_kernel
from recbole_umi.checkpoints.trainer import get_trainer
from recbole_umi.config import Config
from tests.conftest import tiny_config


def trainer_of(data, model_name, **settings):
    config = Config(model_name, "tiny", config_dict=tiny_config(data, eval_protocol="user_split", **settings))
    _, train_data, _, _, model = pipeline.build(config)  # the same seed: the same initial weights
    return get_trainer(config["MODEL_TYPE"], config["model"])(config, model), train_data


@pytest.mark.parametrize("learner, fused", [("adam", True), ("adamw", True), ("sgd", None)])
def test_adam_and_adamw_are_fused_by_default_and_other_learners_kept(tiny_data, learner, fused):
    trainer, _ = trainer_of(tiny_data, "UMI", learner=learner, weight_decay=0.01)
    kind = {"adam": FusedAdam, "adamw": FusedAdamW, "sgd": torch.optim.SGD}[learner]
    assert type(trainer.optimizer) is kind
    [group] = trainer.optimizer.param_groups
    assert group.get("fused") is fused
    # RecBole's settings kept, every parameter in the group
    assert group["lr"] == trainer.config["learning_rate"] and group["weight_decay"] == 0.01
    assert [id(p) for p in group["params"]] == [id(p) for p in trainer.model.parameters()]
    off, _ = trainer_of(tiny_data, "UMI", learner=learner, fused_optimizer=False)
    assert off.optimizer.param_groups[0].get("fused") in (None, False)
    assert type(off.optimizer) is {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[learner]


@pytest.mark.parametrize("model_name, settings", [("MIND", {}), ("SASRec", {"train_neg_sample_args": None})])
def test_fused_training_gives_the_unfused_weights(tiny_data, model_name, settings):  # a plugin model, RecBole's own
    weights = {}
    for fused in (False, True):
        trainer, train_data = trainer_of(tiny_data, model_name, fused_optimizer=fused, **settings)
        torch.manual_seed(7)  # the negatives and dropout masks drawn from here
        trainer._train_epoch(train_data, 0)
        weights[fused] = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    assert weights[True].keys() == weights[False].keys()
    for name, value in weights[True].items():
        torch.testing.assert_close(value, weights[False][name], rtol=1e-4, atol=1e-6, msg=name)
    initial = dict(trainer_of(tiny_data, model_name, **settings)[0].model.named_parameters())
    moved = any(not torch.equal(initial[name], value) for name, value in weights[True].items())
    assert moved  # an epoch of training changed the weights: the comparison compared something


def parameters(seed=0):
    """Three parameters of a float32 model: a table, a map and a bias."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in ((50, 8), (8, 8), (8,))]


def run(optimizer, params, steps=6, closure=False):
    """``steps`` steps on the same gradients for any optimizer of ``params``; the third
    parameter has no gradient on odd steps (left alone, as torch's Adam leaves it)."""
    generator = torch.Generator().manual_seed(1)
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = None if (i == 2 and step % 2) else torch.randn(p.shape, generator=generator).to(p.dtype)
        optimizer.step((lambda: torch.tensor(float(step))) if closure else None)
    return [p.detach().clone() for p in params], optimizer.state_dict()


def assert_same_to_the_bit(ours, torchs):
    (our_params, our_state), (torch_params, torch_state) = ours, torchs
    for a, b in zip(our_params, torch_params):
        assert torch.equal(a, b)
    assert our_state["param_groups"] == torch_state["param_groups"]
    for key, state in torch_state["state"].items():
        assert state.keys() == our_state["state"][key].keys()
        for name, value in state.items():
            assert value.dtype == our_state["state"][key][name].dtype and torch.equal(value, our_state["state"][key][name])


@pytest.fixture
def torch_steps(monkeypatch):
    """The calls the direct step hands to torch's."""
    calls = []
    original = fused_optimizer._torch_step
    monkeypatch.setattr(fused_optimizer, "_torch_step", lambda opt, closure: calls.append(1) or original(opt, closure))
    return calls


@pytest.mark.parametrize("kind, torch_kind, settings", [
    (FusedAdam, torch.optim.Adam, {"lr": 0.01}),
    (FusedAdam, torch.optim.Adam, {"lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "maximize": True}),
    (FusedAdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.05}),
])
def test_the_direct_step_is_torchs_fused_step_to_the_bit(torch_steps, kind, torch_kind, settings):
    params = parameters()
    ours = run(kind(params, **settings), params)
    assert torch_steps == []  # every step direct
    params = parameters()
    assert_same_to_the_bit(ours, run(torch_kind(params, fused=True, **settings), params))
    # the state torch's optimizer reads, and the other way: a checkpoint of either continues in the other
    params = parameters()
    mine = kind(params, **settings)
    run(mine, params, steps=3)
    theirs = torch_kind(twin := [torch.nn.Parameter(p.detach().clone()) for p in params], fused=True, **settings)
    theirs.load_state_dict(copy.deepcopy(mine.state_dict()))  # (load_state_dict would share the tensors)
    assert_same_to_the_bit(run(mine, params, steps=3), run(theirs, twin, steps=3))


@pytest.mark.parametrize("case", ["hook", "closure", "amsgrad", "tensor lr", "profiler", "two dtypes"])
def test_what_the_direct_step_leaves_out_goes_to_torchs_step(torch_steps, case):
    settings = {"amsgrad": True} if case == "amsgrad" else {"lr": torch.tensor(0.01)} if case == "tensor lr" else {}
    params = parameters()
    if case == "two dtypes":
        params[2] = torch.nn.Parameter(params[2].detach().double())
    optimizer = FusedAdam(params, **settings)
    hooked = []
    if case == "hook":
        optimizer.register_step_pre_hook(lambda *args: hooked.append(1))
    if case == "profiler":
        with torch.profiler.profile() as profile:
            ours = run(optimizer, params)
        assert any(event.name == "Optimizer.step#FusedAdam.step" for event in profile.events())
    else:
        ours = run(optimizer, params, closure=case == "closure")
    assert len(torch_steps) == (3 if case == "two dtypes" else 6)  # (without its gradient the float64 one is not there)
    assert hooked == ([1] * 6 if case == "hook" else [])
    twin = parameters()
    if case == "two dtypes":
        twin[2] = torch.nn.Parameter(twin[2].detach().double())
    assert_same_to_the_bit(ours, run(torch.optim.Adam(twin, fused=True, **settings), twin))


def test_a_closures_loss_is_returned():
    params = parameters()
    for p in params:
        p.grad = torch.ones_like(p)
    assert FusedAdam(params).step(lambda: torch.tensor(3.0)) == 3.0


def test_with_fused_kernel_keeps_the_groups_and_refuses_a_used_optimizer():
    params = parameters()
    adam = torch.optim.Adam([{"params": params[:2], "lr": 0.1}, {"params": params[2:], "weight_decay": 0.2}], lr=0.01)
    fused = with_fused_kernel(adam)
    assert type(fused) is FusedAdam
    assert [group["lr"] for group in fused.param_groups] == [0.1, 0.01]
    assert [group["weight_decay"] for group in fused.param_groups] == [0.0, 0.2]
    assert all(group["fused"] for group in fused.param_groups)
    sgd = torch.optim.SGD(params, lr=0.1)
    assert with_fused_kernel(sgd) is sgd
    adam.state[params[0]].get("step")  # reading the state (a defaultdict) is not a step
    with_fused_kernel(adam)
    run(adam, params, steps=1)
    with pytest.raises(ValueError, match="taken steps"):
        with_fused_kernel(adam)
    # the defaults carried for groups added later; AdamW's own
    extra = torch.nn.Parameter(torch.zeros(3))
    fused = with_fused_kernel(torch.optim.AdamW(params, lr=0.05, weight_decay=0.0, betas=(0.8, 0.9)))
    fused.add_param_group({"params": [extra]})
    assert type(fused) is FusedAdamW
    assert {key: fused.param_groups[1][key] for key in ("lr", "weight_decay", "betas", "fused")} == \
        {"lr": 0.05, "weight_decay": 0.0, "betas": (0.8, 0.9), "fused": True}


def test_the_constructors_take_torchs_arguments_and_refuse_unfused_ones():
    assert FusedAdam(parameters(), 0.02).param_groups[0]["lr"] == 0.02  # lr by position, as torch's
    for settings in ({"fused": False}, {"foreach": True}):
        with pytest.raises(ValueError, match="fused kernel"):
            FusedAdamW(parameters(), **settings)


def test_the_check_runs_no_hook_and_no_profiler_label():
    seen = []
    handle = fused_optimizer.torch_optimizer.register_optimizer_step_post_hook(lambda optimizer, *_: seen.append(optimizer))
    fused_optimizer.direct_step_available.cache_clear()
    try:
        with torch.profiler.profile() as profile:
            assert fused_optimizer.direct_step_available()
    finally:
        handle.remove()
    assert seen == []
    assert not any(event.name.startswith("Optimizer.step") for event in profile.events())


@pytest.mark.parametrize("broken", ["a private part missing", "an update that differs"])
def test_where_the_check_fails_every_step_is_torchs(monkeypatch, torch_steps, broken):
    if broken == "a private part missing":
        monkeypatch.delattr(fused_optimizer.torch_optimizer, "_device_dtype_check_for_fused")
    else:
        monkeypatch.setattr(fused_optimizer._DirectStep, "_update", lambda self, calls: None)
    fused_optimizer.direct_step_available.cache_clear()
    try:
        assert not fused_optimizer.direct_step_available()
        params = parameters()
        ours = run(FusedAdam(params, lr=0.01), params)
        assert len(torch_steps) == 6
    finally:
        monkeypatch.undo()
        fused_optimizer.direct_step_available.cache_clear()
    assert fused_optimizer.direct_step_available()
    twin = parameters()
    assert_same_to_the_bit(ours, run(torch.optim.Adam(twin, lr=0.01, fused=True), twin))
