"""The one place that adapts RecBole 1.2.1 to the current Python stack.

RecBole 1.2.1 (2023) breaks on NumPy 2 and setuptools >= 81, switches on autograd anomaly
detection for the whole process when its sequential models are imported, and cannot
finish downloading a dataset outside distributed training; and its data module reads
pickled caches of datasets and data loaders from ``checkpoint_dir`` whenever a file of the
right name is there; it reads atomic files with pandas' slowest parser; it fills missing
values by chained assignment, which pandas 3 ignores; and its trainer calls torch's
deprecated ``torch.cuda.amp.GradScaler``. :func:`apply` repairs all eight, once, and must run before anything imports ``recbole``: every plugin module that imports
RecBole calls it first (``import recbole_umi`` alone stays light and does not). Each fix is
a named function below so that tests can check it and a reader can see exactly what is
changed and why.

- :func:`restore_numpy_aliases`: NumPy 2 removed ``np.float_``, ``np.bool8``, ... that
  RecBole (``Config.compatibility_settings``, ``layers.py``) and ray 2.6.3 use.
- :func:`make_ray_importable`: ``recbole.quick_start`` imports ``ray`` at module load and
  ray 2.6.3 needs ``pkg_resources``, gone from setuptools >= 81. We pin setuptools < 81 in
  ``setup.cfg``; where that pin was overridden, a placeholder ``ray`` lets RecBole load and
  fails with a clear message only if ray (RecBole's hyper-parameter tuning) is really used.
  ray's import also takes SIGTERM over for the whole process (its handler calls
  ``sys.exit(15)`` wherever the signal lands: a ``kill`` ended a run in silence, or, inside a
  compiled step, with a RuntimeError's traceback); the handler the process had before the
  import is put back (Python's default, or the one :mod:`recbole_umi.cli` sets while a
  command runs).
- :func:`import_sequential_models_without_anomaly_mode`: ``recbole/model/sequential_
  recommender/sine.py`` calls ``torch.autograd.set_detect_anomaly(True)`` at import; we
  import the package once here and restore the caller's anomaly setting.
- :func:`download_datasets_without_process_group`: ``Dataset._download`` ends with
  ``torch.distributed.barrier()``, which raises "Default process group has not been
  initialized" in every ordinary (single-process) run, right after the download, so
  ``--dataset=ml-1m`` without a local copy failed. Inside RecBole's dataset module the
  barrier is skipped when no process group exists; in distributed runs it still waits.
- :func:`read_no_recbole_pickles`: ``recbole.data.utils`` unpickles
  ``<checkpoint_dir>/<dataset>-<class>.pth`` (``create_dataset``) and
  ``<dataset>-for-<model>-dataloader.pth`` (``data_preparation``) whenever they exist, or
  the files ``dataset_save_path`` / ``dataloaders_save_path`` name: unpickling runs any code
  the file was made to run. There, ``pickle.load`` now refuses with a clear message, and the
  data-loader cache is never looked for (the loaders are built from the dataset). Saving
  them is refused in :mod:`recbole_umi.settings`.
- :func:`read_atomic_files_with_the_c_parser`: ``Dataset._load_feat`` reads every atomic
  file with ``pandas.read_csv(engine="python")``, several times slower and larger in memory
  than the C parser, which reads the same with a one-character separator (floats parsed
  exactly): RecBole's dataset module gets the C parser there.
- :func:`fill_missing_values_by_assignment`: ``Dataset._fill_nan`` writes
  ``feat[field].fillna(value, inplace=True)``, a chained assignment: pandas 2 warns on every
  dataset load ("will never work" in pandas 3) and pandas 3 would leave the missing values
  in place, silently. The method now assigns the filled column (same values; ``setup.cfg``
  still keeps pandas < 3 for the rest of RecBole).
- :func:`scale_gradients_without_deprecated_amp`: ``Trainer._train_epoch`` builds
  ``torch.cuda.amp.GradScaler(...)``, deprecated in torch 2.4 (a FutureWarning in every run);
  RecBole's trainer module gets ``torch.amp.GradScaler("cuda", ...)``, the same object.

Each name these fixes replace, and each RecBole function whose body they depend on (the
call sites of a patched module attribute, the method a fork copies, by the digest of its
source), is listed in :mod:`recbole_umi.internals` with every other RecBole and hyperopt
internal the package touches; ``tests/test_internals.py`` checks that list against the
installed versions, so an upgrade that moves a call site fails a test instead of leaving a
fix silently unused.

Not a fix here, on purpose: torch >= 2.6 loads with ``weights_only=True``, so RecBole's own
``Trainer.evaluate(model_file=...)``, ``resume_checkpoint`` and ``load_data_and_model``
refuse RecBole's checkpoints, which pickle its ``Config`` (reading them would run code from
the file). Loading them fully is what this module once did; instead the plugin's trainers
write checkpoints of plain data that load weights-only (:mod:`recbole_umi.checkpoint`),
and RecBole's own code stays strict.
"""

from __future__ import annotations

import importlib
import pickle
import signal
import sys
import types
import warnings

import numpy as np
import torch

__all__ = [
    "apply",
    "restore_numpy_aliases",
    "make_ray_importable",
    "import_sequential_models_without_anomaly_mode",
    "download_datasets_without_process_group",
    "read_no_recbole_pickles",
    "read_atomic_files_with_the_c_parser",
    "fill_missing_values_by_assignment",
    "scale_gradients_without_deprecated_amp",
    "NUMPY_ALIASES",
]

# Aliases removed in NumPy 2.0 (and 1.24 for the bare builtins) that RecBole 1.2.1 or
# ray 2.6.3 still reference, mapped to what they always meant.
NUMPY_ALIASES = {
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
    "string_": np.bytes_,
    "bool8": np.bool_,
    "int0": np.intp,
    "uint0": np.uintp,
    "float": float,
    "int": int,
    "bool": bool,
    "complex": complex,
    "object": object,
    "str": str,
    "long": int,
    "unicode": str,
}

_applied = False


def restore_numpy_aliases() -> list[str]:
    """Put back the NumPy aliases RecBole and ray use; returns the names that were added."""
    added = []
    for name, value in NUMPY_ALIASES.items():
        # np.bool is a real (new) scalar type again in NumPy 2: never overwrite a name
        # numpy still defines.
        if name not in np.__dict__:
            setattr(np, name, value)
            added.append(name)
    return added


def _ray_placeholder(reason: str) -> types.ModuleType:
    """A stand-in ``ray`` module that raises ``ImportError(reason)`` on first real use."""

    class _Unavailable(types.ModuleType):
        def __getattr__(self, attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            raise ImportError(reason)

    module = _Unavailable("ray")
    module.__path__ = []  # a package, so that `from ray import tune` reaches __getattr__
    return module


def make_ray_importable() -> bool:
    """Make ``import ray`` (done by ``recbole.quick_start``) succeed; True if ray is real.
    The SIGTERM handler that ray's import replaces is put back."""
    if "ray" in sys.modules:
        return hasattr(sys.modules["ray"], "__version__")
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        with warnings.catch_warnings():
            # setuptools 80 warns on `import pkg_resources`, which ray does at import.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            importlib.import_module("ray")
        return True
    except ImportError as error:
        reason = (
            f"ray could not be imported ({error}). RecBole needs ray only for hyper-parameter "
            "tuning; ray 2.6.3 needs setuptools<81 (pkg_resources): "
            "pip install 'setuptools<81'"
        )
        for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
            del sys.modules[name]
        sys.modules["ray"] = _ray_placeholder(reason)
        return False
    finally:
        if sigterm is not None and signal.getsignal(signal.SIGTERM) is not sigterm:
            signal.signal(signal.SIGTERM, sigterm)  # ray's worker module set its own at import


def import_sequential_models_without_anomaly_mode() -> None:
    """Import RecBole's sequential models once, undoing sine.py's global anomaly switch."""
    was_enabled = torch.is_anomaly_enabled()
    importlib.import_module("recbole.model.sequential_recommender")
    torch.autograd.set_detect_anomaly(was_enabled)


class _DistributedOutsideProcessGroups(types.ModuleType):
    """``torch.distributed`` whose ``barrier`` is a no-op when no process group exists."""

    def __getattr__(self, name):
        return getattr(torch.distributed, name)

    @staticmethod
    def barrier(*args, **kwargs):
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.barrier(*args, **kwargs)
        return None


class _TorchForDatasetDownload(types.ModuleType):
    """``torch`` as seen by RecBole's dataset module: only ``distributed`` differs."""

    distributed = _DistributedOutsideProcessGroups("torch.distributed")

    def __getattr__(self, name):
        return getattr(torch, name)


def download_datasets_without_process_group() -> None:
    """Let RecBole's dataset download finish in a single-process run."""
    module = importlib.import_module("recbole.data.dataset.dataset")
    if not isinstance(module.torch, _TorchForDatasetDownload):
        module.torch = _TorchForDatasetDownload("torch")


class _PickleWithoutLoad(types.ModuleType):
    """``pickle`` as RecBole's data module sees it: ``load`` refuses, the rest is pickle's."""

    def __getattr__(self, name):
        return getattr(pickle, name)

    @staticmethod
    def load(file, *args, **kwargs):
        name = getattr(file, "name", file)
        raise pickle.UnpicklingError(
            f"recbole-umi reads no pickled files, since unpickling can run code from the file: RecBole's "
            f"cache {name} is not read. Delete it; the dataset is built from its atomic files."
        )


def _no_split_dataloaders(config):
    """RecBole's ``load_split_dataloaders``, which unpickles a cache: there is none to read."""
    return None


def read_no_recbole_pickles() -> None:
    """Let RecBole's data module read no pickled dataset or data-loader caches."""
    module = importlib.import_module("recbole.data.utils")
    if not isinstance(module.pickle, _PickleWithoutLoad):
        module.pickle = _PickleWithoutLoad("pickle")
        module.load_split_dataloaders = _no_split_dataloaders


class _PandasWithTheCParser(types.ModuleType):
    """``pandas`` as RecBole's dataset module sees it: ``read_csv`` with the C parser where
    RecBole asks for the Python one and a one-character separator lets the C parser read the
    same (floats parsed exactly, ``float_precision="round_trip"``, as Python's ``float``
    parses them); everything else is pandas'."""

    def __getattr__(self, name):
        return getattr(_pandas(), name)

    @staticmethod
    def read_csv(*args, **kwargs):
        separator = kwargs.get("delimiter", kwargs.get("sep"))
        if kwargs.get("engine") == "python" and isinstance(separator, str) and len(separator) == 1:
            kwargs = {**kwargs, "engine": "c", "float_precision": "round_trip"}
        return _pandas().read_csv(*args, **kwargs)


def _pandas():
    import pandas

    return pandas


def read_atomic_files_with_the_c_parser() -> None:
    """Let RecBole read atomic files with pandas' C parser (it asks for the Python parser,
    several times slower and larger in memory on large files)."""
    module = importlib.import_module("recbole.data.dataset.dataset")
    if not isinstance(module.pd, _PandasWithTheCParser):
        module.pd = _PandasWithTheCParser("pandas")


def _fill_nan(self):
    """RecBole's ``Dataset._fill_nan`` with the filled columns assigned, not filled in place
    through a chained assignment: a token field's missing values become 0 (``[PAD]``), a
    float field's its mean, a sequence field's an empty array."""
    from recbole.utils import FeatureType

    for feat_name in self.feat_name_list:
        feat = getattr(self, feat_name)
        for field in feat:
            field_type = self.field2type[field]
            if field_type == FeatureType.TOKEN:
                feat[field] = feat[field].fillna(value=0)
            elif field_type == FeatureType.FLOAT:
                feat[field] = feat[field].fillna(value=feat[field].mean())
            else:
                dtype = np.int64 if field_type == FeatureType.TOKEN_SEQ else np.float64
                feat[field] = feat[field].apply(lambda x: np.array([], dtype=dtype) if isinstance(x, float) else x)


def fill_missing_values_by_assignment() -> None:
    """Let RecBole fill missing values in a way pandas 3 keeps and pandas 2 does not warn about."""
    module = importlib.import_module("recbole.data.dataset.dataset")
    if module.Dataset._fill_nan is not _fill_nan:
        _fill_nan.replaced = module.Dataset._fill_nan  # RecBole's own, for the tests
        module.Dataset._fill_nan = _fill_nan


class _AmpWithoutDeprecation(types.ModuleType):
    """``torch.cuda.amp`` as RecBole's trainer module sees it: ``GradScaler`` and ``autocast``
    are torch's current ``torch.amp`` versions for CUDA, everything else is the module's."""

    def __getattr__(self, name):
        return getattr(torch.cuda.amp, name)

    @staticmethod
    def GradScaler(*args, **kwargs):  # noqa: N802 (torch's name)
        return torch.amp.GradScaler("cuda", *args, **kwargs)

    @staticmethod
    def autocast(*args, **kwargs):
        return torch.autocast("cuda", *args, **kwargs)


def scale_gradients_without_deprecated_amp() -> None:
    """Let RecBole's trainer build its gradient scaler without torch's deprecation warning."""
    module = importlib.import_module("recbole.trainer.trainer")
    if not isinstance(module.amp, _AmpWithoutDeprecation):
        module.amp = _AmpWithoutDeprecation("torch.cuda.amp")


def apply() -> None:
    """Apply every fix, once; safe to call again."""
    global _applied
    if _applied:
        return
    restore_numpy_aliases()
    make_ray_importable()
    import_sequential_models_without_anomaly_mode()
    download_datasets_without_process_group()
    read_no_recbole_pickles()
    read_atomic_files_with_the_c_parser()
    fill_missing_values_by_assignment()
    scale_gradients_without_deprecated_amp()
    _applied = True
