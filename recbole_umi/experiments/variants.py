"""Variant names of the experiment commands: a model name with suffixes that switch a setting.

``MIND+HN`` is MIND with ``harder_negatives: True``; ``UMI-DAR`` and ``UMI-IR`` switch off
UMI's dual-attention routing and interest refinement; ``UMISA-PROFILE`` is UMISA without the
profile (no steering, no refinement). A suffix is allowed only where it
changes the model (its class's ``variant_settings``), and every name is checked before
anything trains.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from recbole_umi.config import Config
from recbole_umi.registry import get_model
from recbole_umi.settings import SettingsError

__all__ = ["VARIANT_SUFFIXES", "VariantError", "parse_variant", "resolve_variant", "check_variants",
           "read_variant_files"]

VARIANT_SUFFIXES = {
    "+HN": {"harder_negatives": True},
    "-HN": {"harder_negatives": False},
    "-DAR": {"use_dar": False},
    "-IR": {"use_ir": False},
    "-PROFILE": {"profile_steering": "none", "refine_interests": False},
}


class VariantError(SettingsError):
    """A name in ``--models`` that names no model, or a suffix its model does not have."""


def parse_variant(name: str) -> tuple[str, dict]:
    """``"UMI-DAR-HN"`` -> ``("UMI", {"use_dar": False, "harder_negatives": False})``; two
    suffixes of one setting (``UMI+HN-HN``) are a :class:`VariantError`."""
    model, overrides = name, {}
    while True:
        for suffix, settings in VARIANT_SUFFIXES.items():
            if model.endswith(suffix) and len(model) > len(suffix):
                twice = set(settings) & set(overrides)
                if twice:
                    raise VariantError("models", name,
                                       f"sets {', '.join(sorted(twice))} twice (one suffix per setting)")
                model, overrides = model[: -len(suffix)], {**settings, **overrides}
                break
        else:
            return model, overrides


def resolve_variant(name: str) -> tuple[str, dict]:
    """:func:`parse_variant`, checked: the model exists (plugin or RecBole) and each suffix
    switches a setting the model has (its class's ``variant_settings``); else
    :class:`VariantError` naming the variant, the suffix and the suffixes the model takes."""
    model, overrides = parse_variant(name)
    try:
        model_class = get_model(model)
    except ValueError as error:
        raise VariantError("models", name, f"names no model: {error}") from None
    supported = set(getattr(model_class, "variant_settings", ()))
    allowed = [suffix for suffix, switched in VARIANT_SUFFIXES.items() if set(switched) <= supported]
    for key, value in overrides.items():
        if key not in supported:
            suffix = next(s for s, switched in VARIANT_SUFFIXES.items() if key in switched and switched[key] == value)
            raise VariantError(
                "models", name,
                f"the suffix {suffix} sets {key}, which does not change {model} (a variant must differ from its "
                f"model); {model} takes {', '.join(allowed) if allowed else 'no suffix'}",
            )
    return model, overrides


def check_variants(variants, dataset, files_of: dict[str, list[str]] | None = None, config_dict=None) -> None:
    """Before anything trains: every variant names a model with its suffixes (every name
    first), then each variant's config (its files ``files_of[variant]``, the comparison's
    settings, its suffixes') passes validation."""
    resolved = {variant: resolve_variant(variant) for variant in variants}
    for variant, (model, overrides) in resolved.items():
        Config(model, dataset, (files_of or {}).get(variant), {**(config_dict or {}), **overrides})


def read_variant_files(path, variants: list[str]) -> dict[str, list[str]]:
    """``{variant: [yaml file, ...]}`` from a YAML mapping, for the ``variants`` run. The
    file may also name variants not run now (one plan for several ``compare`` calls), but
    every name must be a variant (:func:`resolve_variant`: a typo fails) and every file of a
    variant run must exist (relative paths: from the working directory)."""
    mapping = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(mapping, dict):
        raise ValueError(f"{path} must map variant names to lists of YAML files")
    chosen = {}
    for variant, files in mapping.items():
        resolve_variant(str(variant))  # VariantError for a name that is no model or variant
        if variant not in variants:
            continue
        files = [files] if isinstance(files, str) else files
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError(f"{path}: {variant} must map to a YAML file or a list of them ([] for none), "
                             f"got {files!r}")
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"{path}: {variant}'s files {missing} do not exist")
        chosen[variant] = list(files)
    return chosen
