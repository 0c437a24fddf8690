"""Name -> class lookup: plugin models first, then RecBole's built-ins."""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import difflib  # noqa: E402
from pathlib import Path  # noqa: E402

import recbole.model  # noqa: E402
from recbole.utils import get_model as recbole_get_model  # noqa: E402

from recbole_umi.model import (  # noqa: E402
    MIND,
    UMI,
    UMISA,
    Popularity,
    ComiRec,
    ComiRecDR,
    ComiRecSA,
    ProfileDSSM,
    SASRecMatching,
    YoutubeDNN,
)

__all__ = ["PLUGIN_MODELS", "get_model"]

# Every model this plugin adds, by the name users pass as `--model`.
PLUGIN_MODELS = {
    cls.__name__: cls
    for cls in (UMI, UMISA, MIND, ComiRec, ComiRecDR, ComiRecSA, ProfileDSSM, YoutubeDNN, SASRecMatching, Popularity)
}


def get_model(model_name: str):
    """The model class called ``model_name``, looked up in the plugin, then in RecBole."""
    if model_name in PLUGIN_MODELS:
        return PLUGIN_MODELS[model_name]
    # RecBole's own search imports its exlib package (lightgbm, xgboost) for any unknown
    # name; look for the model's file first so a typo gets a clear message instead.
    model_dir = Path(recbole.model.__file__).parent
    if not list(model_dir.glob(f"*_recommender/{model_name.lower()}.py")):
        by_lower = {name.lower(): name for name in PLUGIN_MODELS}
        close = [by_lower[n] for n in difflib.get_close_matches(model_name.lower(), list(by_lower), n=2, cutoff=0.6)]
        raise ValueError(
            f"Unknown model {model_name!r}: it is neither a recbole-umi model "
            f"({', '.join(sorted(PLUGIN_MODELS))}) nor one of RecBole's built-in models."
            + (f" Did you mean {' or '.join(map(repr, close))}?" if close else "")
        )
    return recbole_get_model(model_name)

