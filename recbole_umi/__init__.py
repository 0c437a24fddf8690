"""recbole-umi: user-aware multi-interest candidate matching (UMI, SIGIR'22) for RecBole.

Importing the package applies the RecBole 1.2.1 compatibility fixes
(:mod:`recbole_umi.compat`) before anything else touches RecBole.
"""

from recbole_umi import compat

compat.apply()

from recbole_umi.config import Config  # noqa: E402
from recbole_umi.quick_start import run  # noqa: E402
from recbole_umi.registry import PLUGIN_MODELS, get_model, get_trainer  # noqa: E402

__all__ = ["Config", "run", "get_model", "get_trainer", "PLUGIN_MODELS", "compat"]
__version__ = "0.1.0"
