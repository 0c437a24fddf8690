"""Plain data: the one conversion of config values, results and checkpoint content into
values that YAML, JSON and torch's weights-only unpickler read back without running code.

Light on purpose (imports neither RecBole nor torch nor numpy): a tensor, a device or a
numpy scalar can only exist once its library is imported, so the libraries are looked up
in ``sys.modules`` instead of being imported here.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from enum import Enum
from typing import Any

__all__ = ["plain_data"]

_SCALARS = (str, int, float, bool, type(None))


def plain_data(value: Any, *, tensors: bool = False, where: str = "value") -> Any:
    """``value`` as plain data; a ``TypeError`` naming ``where`` for what has none.

    Always: str, int, float, bool and None stay; numpy scalars become Python's
    (``np.float32(0.5)`` -> ``0.5``: hyperopt and RecBole's evaluator hand them out); enums
    become their name, a ``torch.device`` its string; dicts and lists are converted item by
    item.

    Args:
        value: what to convert.
        tensors: False for YAML and JSON (configs, settings, metric results): tuples become
            lists and keys strings, so that a YAML or JSON round trip gives the same value;
            a tensor is a TypeError. True for a checkpoint read back with
            ``torch.load(weights_only=True)``: dense tensors are kept (detached, on the
            CPU), tuples, OrderedDicts and a state dict's ``_metadata`` (module versions,
            read by ``load_state_dict``) are kept, keys must be str or int.
        where: how error messages name ``value`` (``"checkpoint"``); nested items are
            named below it (``checkpoint['optimizer']['state']``).
    """
    torch = sys.modules.get("torch")
    numpy = sys.modules.get("numpy")
    if type(value) in _SCALARS:
        return value
    if numpy is not None and isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, Enum):
        return value.name
    if torch is not None and isinstance(value, torch.Tensor):
        if not tensors:
            raise TypeError(f"{where}: a tensor is not YAML or JSON data")
        if value.layout != torch.strided:
            raise TypeError(f"{where}: a {value.layout} tensor (only dense tensors are saved)")
        return value.detach().cpu()
    if torch is not None and isinstance(value, torch.device):
        return str(value)
    if isinstance(value, dict):
        plain = OrderedDict() if tensors and isinstance(value, OrderedDict) else {}
        for key, item in value.items():
            if not tensors:
                key = str(key)
            elif type(key) not in (str, int):
                raise TypeError(f"{where}: key {key!r} ({type(key).__name__}) is neither str nor int")
            plain[key] = plain_data(item, tensors=tensors, where=f"{where}[{key!r}]")
        if tensors and hasattr(value, "_metadata"):
            plain._metadata = plain_data(value._metadata, tensors=True, where=f"{where}._metadata")
        return plain
    if isinstance(value, (list, tuple)):
        items = [plain_data(item, tensors=tensors, where=f"{where}[{i}]") for i, item in enumerate(value)]
        return type(value)(items) if tensors else items
    raise TypeError(f"{where}: {type(value).__name__} is not plain data")
