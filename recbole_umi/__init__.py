"""recbole-umi: user-aware multi-interest candidate matching (UMI, SIGIR'22) for RecBole.

Every module that uses RecBole (``config``, ``registry``, ``quick_start``, ``compare``,
``model``, ``data``) applies the RecBole 1.2.1 compatibility fixes
(:mod:`recbole_umi.compat`) before it imports RecBole. The light modules (``settings``,
``metrics``, ``retrieval``, ``compat``, ``resources``, ``command_line``: the command line's
``--help`` and ``--version``) import neither RecBole nor ray, and neither does
``import recbole_umi``: ``Config``, ``run``, ``load`` (a saved model, see
:mod:`recbole_umi.checkpoint`), ``CheckpointError``, ``get_model`` and ``PLUGIN_MODELS`` are
loaded on first use. Code that calls RecBole directly, before any of those, calls
``recbole_umi.compat.apply()`` first.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["Config", "run", "load", "CheckpointError", "get_model", "PLUGIN_MODELS", "__version__"]

_LAZY_ATTRIBUTES = {
    "Config": "recbole_umi.config",
    "run": "recbole_umi.quick_start",
    "load": "recbole_umi.checkpoint",
    "CheckpointError": "recbole_umi.checkpoint",
    "get_model": "recbole_umi.registry",
    "PLUGIN_MODELS": "recbole_umi.registry",
}


def __getattr__(name: str):
    if name not in _LAZY_ATTRIBUTES:
        raise AttributeError(f"module 'recbole_umi' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    globals()[name] = value
    return value
