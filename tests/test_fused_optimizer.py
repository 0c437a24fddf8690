"""``fused_optimizer``: RecBole's Adam and AdamW become torch's fused kernel (on by default),
other learners stay as RecBole builds them, and training with it gives the weights the
unfused optimizer gives, to float tolerance."""

import pytest
import torch

from recbole_umi import pipeline
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
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[learner]
    assert type(trainer.optimizer) is kind
    [group] = trainer.optimizer.param_groups
    assert group.get("fused") is fused
    # RecBole's settings kept, every parameter in the group
    assert group["lr"] == trainer.config["learning_rate"] and group["weight_decay"] == 0.01
    assert [id(p) for p in group["params"]] == [id(p) for p in trainer.model.parameters()]
    off, _ = trainer_of(tiny_data, "UMI", learner=learner, fused_optimizer=False)
    assert off.optimizer.param_groups[0].get("fused") in (None, False)


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
