"""Name -> class lookup: plugin models first, then RecBole's built-ins."""

from __future__ import annotations

from pathlib import Path

import recbole.model
from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

from recbole_umi.model import MIND, UMI, ComiRec, ComiRecDR, ComiRecSA, ProfileDSSM, YoutubeDNN

__all__ = ["PLUGIN_MODELS", "get_model", "get_trainer", "is_plugin_model"]

# Every model this plugin adds, by the name users pass as `--model`.
PLUGIN_MODELS = {
    cls.__name__: cls for cls in (UMI, MIND, ComiRec, ComiRecDR, ComiRecSA, ProfileDSSM, YoutubeDNN)
}
# Models with a dedicated trainer; all others use RecBole's choice for their type.
PLUGIN_TRAINERS: dict = {}


def is_plugin_model(model_name: str) -> bool:
    return model_name in PLUGIN_MODELS


def get_model(model_name: str):
    """The model class called ``model_name``, looked up in the plugin, then in RecBole."""
    if model_name in PLUGIN_MODELS:
        return PLUGIN_MODELS[model_name]
    # RecBole's own search imports its exlib package (lightgbm, xgboost) for any unknown
    # name; look for the model's file first so a typo gets a clear message instead.
    model_dir = Path(recbole.model.__file__).parent
    if not list(model_dir.glob(f"*_recommender/{model_name.lower()}.py")):
        raise ValueError(
            f"Unknown model {model_name!r}: it is neither a recbole-umi model "
            f"({', '.join(sorted(PLUGIN_MODELS))}) nor one of RecBole's built-in models."
        )
    return recbole_get_model(model_name)


def get_trainer(model_type, model_name: str):
    """The trainer class for ``model_name``: the plugin's own, else RecBole's choice."""
    if model_name in PLUGIN_TRAINERS:
        return PLUGIN_TRAINERS[model_name]
    return recbole_get_trainer(model_type, model_name)
