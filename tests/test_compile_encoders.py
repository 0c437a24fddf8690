"""``compile_step`` for the causal encoders (SASRecMatching, RecBole's SASRec, UMISA): the
compiled training loss gives the eager loss and gradients to float tolerance, dropout included
(the checks and their helpers: test_compile_step.py; a file of its own so that the suite's two
workers share the compiles)."""

import pytest

from tests.test_compile_step import assert_compiled_equals_eager


@pytest.mark.compile
@pytest.mark.parametrize("model_name, settings", [
    ("SASRecMatching", {"train_sampling": "windows", "hidden_dropout_prob": 0.3}),  # an encoder with dropout, windows
    # rows: the encoder's last layer at the last position only, its dropouts drawn in eager's order
    ("SASRecMatching", {"hidden_dropout_prob": 0.3}),
    ("SASRec", {"train_neg_sample_args": None, "hidden_dropout_prob": 0.3}),  # RecBole's own: its CE over every item
    # UMISA's default step: every state, the profile-steered heads, the recent interest, the
    # refinement with field weights, HN
    ("UMISA", {"hidden_dropout_prob": 0.3}),
])
def test_the_compiled_encoder_loss_equals_the_eager_one(tiny_data, torch_threads, model_name, settings):
    torch_threads(1)
    assert_compiled_equals_eager(tiny_data, model_name, settings)
