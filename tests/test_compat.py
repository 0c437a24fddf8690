"""Each RecBole 1.2.1 breakage on the current stack is handled by recbole_umi.compat."""

import ast
import pickle
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from recbole_umi import compat
from recbole_umi.quick_start import run
from tests.conftest import REPO_ROOT, tiny_config


def run_python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter: nothing imported yet, no fix applied yet."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


# RecBole's Config sets np.float = np.float_ (gone in NumPy 2); importing its sequential
# models switches autograd's anomaly mode on for the whole process.
RECBOLE_BREAKAGES = """
import torch, recbole.model.sequential_recommender
from recbole.config import Config
try:
    Config('Pop', 'ml-100k', config_dict={'state': 'ERROR'})
    built = 'built'
except AttributeError as error:
    built = 'failed: ' + str(error)
print(torch.is_anomaly_enabled(), built)
"""


@pytest.mark.parametrize(
    "first, expected",
    [
        ("", "True failed: `np.float_` was removed"),  # control: RecBole alone
        ("import recbole_umi.quick_start, recbole_umi.compat as c; assert c._applied", "False built"),
    ],
)
def test_fixes_in_a_fresh_process(first, expected):
    """numpy aliases and anomaly mode, in an interpreter where nothing was imported before."""
    out = run_python(first + "\n" + RECBOLE_BREAKAGES)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip().splitlines()[-1].startswith(expected)


LIGHT_MODULES = ["recbole_umi", "recbole_umi.settings", "recbole_umi.metrics", "recbole_umi.retrieval", "recbole_umi.compat",
                 "recbole_umi.resources", "recbole_umi.command_line"]


def test_light_modules_import_neither_recbole_nor_ray():
    code = "import importlib, sys\n"
    for module in LIGHT_MODULES:
        code += (
            f"importlib.import_module({module!r})\n"
            f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & {{'recbole', 'ray'}})\n"
            f"assert not heavy, ({module!r}, heavy)\n"
        )
    out = run_python(code + "print('light')")
    assert out.returncode == 0 and out.stdout.strip() == "light", out.stderr[-1500:]


def _module_level_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, what)`` of each module-level import and ``compat.apply()`` call, in order."""
    events = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            events += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            events.append((node.lineno, node.module))
        elif isinstance(node, ast.Expr) and ast.unparse(node.value) == "compat.apply()":
            events.append((node.lineno, "compat.apply()"))
    return events


def test_every_module_applies_the_fixes_before_importing_recbole():
    """Statically: in every module, a module-level RecBole import comes after
    ``compat.apply()``, in the module itself or in the package ``__init__`` above it."""
    package = REPO_ROOT / "recbole_umi"
    for path in sorted(package.rglob("*.py")):
        events = _module_level_imports(path)
        applied_by_package = path.name != "__init__.py" and path.parent != package and any(
            what == "compat.apply()" for _, what in _module_level_imports(path.parent / "__init__.py")
        )
        first_recbole = next((line for line, what in events if what.split(".")[0] == "recbole"), None)
        first_apply = next((line for line, what in events if what == "compat.apply()"), None)
        if first_recbole is not None and not applied_by_package:
            assert first_apply is not None and first_apply < first_recbole, f"{path.relative_to(REPO_ROOT)}:{first_recbole}"


def test_lazy_package_attributes():
    import recbole_umi
    from recbole_umi.config import Config
    from recbole_umi.quick_start import run as quick_run

    assert recbole_umi.Config is Config and recbole_umi.run is quick_run
    with pytest.raises(AttributeError, match="no attribute 'Conf'"):
        recbole_umi.Conf


def test_ray_placeholder_fails_only_on_use(monkeypatch):
    placeholder = compat._ray_placeholder("no pkg_resources")
    try:
        placeholder.tune
    except ImportError as error:
        assert "no pkg_resources" in str(error)
    else:
        raise AssertionError("using the placeholder must raise")


def test_torch_stays_strict_in_recbole_trainer(tmp_path):
    """No fix loosens checkpoint loading: RecBole's trainer module sees torch itself, whose
    load refuses pickled objects (RecBole's own checkpoints pickle its Config)."""
    import recbole.trainer.trainer as trainer_module

    assert trainer_module.torch is torch
    assert not hasattr(compat, "load_recbole_checkpoints_fully")
    path = tmp_path / "obj.pth"
    torch.save({"config": Fraction(1, 3)}, path)  # an arbitrary non-tensor class
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        trainer_module.torch.load(path)


def test_trained_model_checkpoint_reloads_and_evaluates(tiny_data):
    """A run saves its best and last epochs as plain data (weights-only loadable) and its
    test evaluation reads the best one back (recbole_umi.checkpoint; tests/test_checkpoint.py)."""
    result = run("UMI", "tiny", config_dict=tiny_config(tiny_data, epochs=1), saved=True)
    assert set(result["test_result"]) == {"recall@5", "precision@5"}
    saved = sorted((tiny_data.parent / "saved").glob("UMI-*.pth"))
    assert sorted(p.stem.endswith("-last") for p in saved) == [False, True]
    for path in saved:
        assert torch.load(path, weights_only=True)["model"] == "UMI"


def _offline_download(monkeypatch, tmp_path):
    """RecBole's download path with the network replaced by a local zip of a tiny dataset
    (files named ``tinydl-src.*``, as RecBole's zips use another name than the dataset)."""
    import shutil
    import zipfile

    from recbole.data.dataset import dataset as dataset_module

    from tests.conftest import random_sequences, write_atomic

    sequences, profiles = random_sequences(n_users=20, n_items=15, length=6)
    source = write_atomic(tmp_path / "source", "tinydl-src", sequences, profiles) / "tinydl-src"
    archive = tmp_path / "tinydl-src.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for file in source.iterdir():
            handle.write(file, file.name)

    def local_download(url, folder):
        return shutil.copy(archive, folder)

    monkeypatch.setattr(dataset_module.Dataset, "_get_download_url", lambda self, *a, **k: "file://tinydl-src.zip")
    monkeypatch.setattr(dataset_module, "decide_download", lambda url: True)
    monkeypatch.setattr(dataset_module, "download_url", local_download)
    monkeypatch.chdir(tmp_path)
    settings = tiny_config(tmp_path / "data")
    return sum(len(items) for items in sequences.values()), settings


def test_dataset_download_finishes_without_a_process_group(monkeypatch, tmp_path):
    from recbole.data import create_dataset

    from recbole_umi.config import Config

    n_interactions, settings = _offline_download(monkeypatch, tmp_path)
    dataset = create_dataset(Config("UMI", "tinydl", config_dict=settings))
    assert dataset.inter_num == n_interactions
    assert (tmp_path / "data" / "tinydl" / "tinydl.inter").exists()


def test_dataset_download_fails_without_the_fix(monkeypatch, tmp_path):
    """The check above can fail: with RecBole's own torch the download ends in an error."""
    from recbole.data import create_dataset
    from recbole.data.dataset import dataset as dataset_module

    from recbole_umi.config import Config

    _, settings = _offline_download(monkeypatch, tmp_path)
    monkeypatch.setattr(dataset_module, "torch", torch)
    with pytest.raises((RuntimeError, ValueError), match="process group"):
        create_dataset(Config("UMI", "tinydl", config_dict=settings))


def test_atomic_files_read_by_the_c_parser_equal_the_python_parsers(tmp_path, monkeypatch):
    """Every field loads the same with the C parser as with RecBole's Python parser, which
    the fix replaces: ml-100k (tokens, token sequences, integer-valued floats, every column)
    and generated data (floats with four decimals)."""
    import pandas
    import recbole.data.dataset.dataset as dataset_module

    from recbole_umi.compat import _PandasWithTheCParser
    from recbole_umi.config import Config
    from recbole_umi.data import create_dataset
    from recbole_umi.datasets.synth import main as generate

    monkeypatch.chdir(tmp_path)
    fixed = dataset_module.pd
    assert isinstance(fixed, _PandasWithTheCParser)  # the fix is in place
    generate([str(tmp_path / "data"), "--users=300", "--items=200", "--categories=8", "--max_interests=3"])
    configs = [
        Config("UMI", "ml-100k", config_dict={"state": "ERROR", "load_col": None}),
        Config("UMI", "synth", config_file_list=[str(tmp_path / "data" / "synth.yaml")],
               config_dict={"state": "ERROR", "data_path": str(tmp_path / "data"), "n_negatives": 10}),
    ]
    for config in configs:
        loaded = []
        for module in (fixed, pandas):  # the C parser, then RecBole's own Python parser
            monkeypatch.setattr(dataset_module, "pd", module)
            dataset = create_dataset(config)
            dataset._change_feat_format()  # the tables as tensors, as every build starts
            loaded.append(dataset)
        c, python = loaded
        assert c.field2id_token.keys() == python.field2id_token.keys()
        for field in c.field2id_token:
            assert list(c.field2id_token[field]) == list(python.field2id_token[field]), field
        for name in ("inter_feat", "user_feat", "item_feat"):
            ours, theirs = getattr(c, name), getattr(python, name)
            if ours is None:  # a file load_col leaves out
                assert theirs is None
                continue
            assert sorted(ours.columns) == sorted(theirs.columns)
            for column in ours.columns:
                assert torch.equal(ours[column], theirs[column]), (config["dataset"], name, column)
    monkeypatch.setattr(dataset_module, "pd", fixed)



MISSING_VALUES = {
    "tinynan.inter": "user_id:token\titem_id:token\ttimestamp:float\n"
    + "".join(f"{u}\t{i}\t{t}\n" for u in range(1, 7) for t, i in enumerate(range(1, 6))),
    "tinynan.user": "user_id:token\tgender:token\tincome:float\n1\tF\t1.0\n2\t\t3.0\n3\tM\t\n4\tF\t8.0\n5\t\t\n6\tM\t0.0\n",
}



def test_missing_values_filled_by_assignment(tmp_path, monkeypatch):
    """RecBole fills a token field's blanks with [PAD] and a float field's with its mean,
    without pandas' FutureWarning; under copy-on-write (pandas 3's only mode) the fix still
    fills them, where RecBole's own chained in-place ``fillna`` leaves them missing."""
    import pandas
    import recbole.data.dataset.dataset as dataset_module

    from recbole_umi.compat import _fill_nan
    from recbole_umi.config import Config
    from recbole_umi.data import create_dataset

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tinynan").mkdir()
    for name, text in MISSING_VALUES.items():
        (tmp_path / "tinynan" / name).write_text(text)
    config = Config("UMI", "tinynan", config_dict={
        "state": "ERROR", "data_path": str(tmp_path), "load_col": None, "profile_fields": ["gender", "income"],
        "n_negatives": 2, "MAX_ITEM_LIST_LENGTH": 3, "topk": [2], "valid_metric": "MRR@2"})
    assert dataset_module.Dataset._fill_nan is _fill_nan  # the fix is in place

    def profiles(fill_nan, copy_on_write: bool) -> list[tuple]:
        """Raw users 1-6's (gender, income) as the dataset holds them."""
        monkeypatch.setattr(dataset_module.Dataset, "_fill_nan", fill_nan)
        with warnings.catch_warnings(), pandas.option_context("mode.copy_on_write", copy_on_write):
            warnings.simplefilter("error", FutureWarning)
            dataset = create_dataset(config)
        table, tokens = dataset.user_feat, dataset.field2id_token
        row_of = {tokens["user_id"][user]: row for row, user in enumerate(table["user_id"])}
        return [(tokens["gender"][int(table["gender"][row_of[str(u)]])], float(table["income"][row_of[str(u)]]))
                for u in range(1, 7)]

    # blanks: users 2's and 5's gender, 3's and 5's income (the mean of 1, 3, 8, 0 is 3)
    expected = [("F", 1.0), ("[PAD]", 3.0), ("M", 3.0), ("F", 8.0), ("[PAD]", 3.0), ("M", 0.0)]
    assert profiles(_fill_nan, copy_on_write=False) == expected
    assert profiles(_fill_nan, copy_on_write=True) == expected
    with pytest.raises(FutureWarning, match="chained assignment"):  # control: RecBole's own method
        profiles(_fill_nan.replaced, copy_on_write=False)
    monkeypatch.setattr(dataset_module.Dataset, "_fill_nan", _fill_nan.replaced)
    with warnings.catch_warnings(), pandas.option_context("mode.copy_on_write", True):
        warnings.simplefilter("ignore")
        left = create_dataset(config).user_feat
    assert pandas.options.mode.copy_on_write is False  # restored for the other tests
    # users 3's and 5's income (and the padding user's profile) left missing, silently
    assert left["income"].isna().tolist() == [True, False, False, True, False, True, False]


def test_trainer_builds_its_scaler_without_a_deprecation_warning():
    import recbole.trainer.trainer as trainer_module

    from recbole_umi.compat import _AmpWithoutDeprecation

    assert isinstance(trainer_module.amp, _AmpWithoutDeprecation)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        scaler = trainer_module.amp.GradScaler(enabled=False)
    assert isinstance(scaler, torch.amp.GradScaler) and not scaler.is_enabled()
