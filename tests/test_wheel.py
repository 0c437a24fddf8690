"""The built distributions: every YAML file ships, and the installed wheel runs.

The wheel and the sdist are built from a copy of the repository in pytest's tmp_path,
because setuptools writes build/ and *.egg-info/ into the tree it builds. The wheel is
installed into a folder of its own and run in fresh processes whose working directory is
outside the repository, so neither the checkout nor an editable install can stand in for
it. Offline: no build isolation (it would download setuptools and wheel), no index, no
dependencies (the test environment's are used).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The YAML folders at the repository root that setup.cfg maps into the package.
RESOURCE_FOLDERS = ("properties", "dataset_configs")
# Left out of the copy at any depth, and at the root only (the run artefacts of .gitignore).
SKIP_ANYWHERE = {".git", "__pycache__", ".pytest_cache"}
SKIP_AT_ROOT = {"build", "dist", "saved", "log", "log_tensorboard", "dataset", ".whl", ".gl"}
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
# ml-100k (ships inside recbole: no download), shrunk to a few seconds on 2 CPU cores.
FAST_RUN = [
    "--dataset=ml-100k", "--epochs=1", "--state=ERROR", "--show_progress=False",
    "--train_batch_size=8192", "--embedding_size=8", "--MAX_ITEM_LIST_LENGTH=5",
]


def repository_yaml() -> set[str]:
    """Every YAML file under the resource folders, as ``properties/model/UMI.yaml`` etc."""
    found = {
        path.relative_to(REPO_ROOT).as_posix()
        for folder in RESOURCE_FOLDERS
        for path in (REPO_ROOT / folder).rglob("*.yaml")
    }
    assert "properties/overall.yaml" in found and "dataset_configs/ml-100k.yaml" in found
    return found


def _skip(folder: str, names: list[str]) -> set[str]:
    skipped = {name for name in names if name in SKIP_ANYWHERE or name.endswith(".egg-info")}
    if Path(folder).resolve() == REPO_ROOT:
        skipped |= SKIP_AT_ROOT.intersection(names)
    return skipped


def check_run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert out.returncode == 0, f"{cmd} exited with {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wheel")


@pytest.fixture(scope="module")
def source(work) -> Path:
    target = work / "src"
    shutil.copytree(REPO_ROOT, target, ignore=_skip)
    return target


@pytest.fixture(scope="module")
def wheel(source, work) -> Path:
    check_run(PIP + ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(work / "dist"), str(source)])
    (built,) = (work / "dist").glob("recbole_umi-*.whl")
    return built


@pytest.fixture(scope="module")
def sdist(source, work) -> Path:
    # No `python -m build` here; setuptools' PEP 517 hook is what it would call.
    script = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    check_run([sys.executable, "-c", script, str(work / "sdist")], cwd=source)
    (built,) = (work / "sdist").glob("recbole_umi-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def site(wheel, work) -> Path:
    target = work / "site"
    check_run(PIP + ["install", "--no-deps", "--no-index", "--target", str(target), str(wheel)])
    return target


@pytest.fixture
def installed_env(site) -> dict[str, str]:
    """Environment of a process that imports recbole_umi from the installed wheel."""
    # One torch thread: on a busy 2-core machine the default pool made the epoch 20x slower.
    return {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}


def test_wheel_carries_every_yaml_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = {f"recbole_umi/{name}" for name in repository_yaml()} - names
    assert not missing, f"not in the wheel: {sorted(missing)}"


def test_wheel_carries_every_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "recbole_umi").rglob("*.py")}
    missing = modules - names
    assert not missing, f"not in the wheel (add the package to setup.cfg's packages): {sorted(missing)}"


def test_wheel_carries_the_license(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    [license_file] = [name for name in names if name.endswith(".dist-info/licenses/LICENSE") or
                      name.endswith(".dist-info/LICENSE")]
    assert zipfile.ZipFile(wheel).read(license_file).decode().startswith("MIT License")


def test_sdist_carries_every_yaml_file(sdist):
    with tarfile.open(sdist) as archive:
        names = {member.name.partition("/")[2] for member in archive.getmembers()}  # drop recbole_umi-<version>/
    missing = repository_yaml() - names
    assert not missing, f"not in the sdist: {sorted(missing)}"


def test_installed_wheel_runs_outside_the_repository(site, installed_env, tmp_path):
    # tmp_path is the working directory: RecBole writes log/ and saved/ there. find_spec is
    # the lookup `python -m` makes, without the seconds of importing torch and recbole.
    where = check_run(
        [sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('recbole_umi').origin)"],
        cwd=tmp_path, env=installed_env,
    )
    assert Path(where.stdout.strip()).resolve() == (site / "recbole_umi" / "__init__.py").resolve()
    out = check_run(
        [sys.executable, "-m", "recbole_umi", "--model=UMI", *FAST_RUN, "--n_interests=2", "--routing_iterations=1"],
        cwd=tmp_path, env=installed_env,
    )
    assert "HitRate@50" in out.stdout and any(line.startswith("test ") for line in out.stdout.splitlines())


def test_console_script_is_installed(site, installed_env, tmp_path):
    script = site / "bin" / "recbole-umi"
    out = check_run([str(script), "--help"], cwd=tmp_path, env=installed_env)
    assert "--model" in out.stdout and "--config_files" in out.stdout


def test_console_script_exits_with_status_0_after_a_run(monkeypatch):
    """The script passes its function's return value to sys.exit: a run's result dict
    there would mean exit status 1, so console_main returns nothing."""
    from recbole_umi import quick_start

    monkeypatch.setattr(quick_start, "main", lambda argv=None: {"test_result": {"recall@10": 0.1}})
    monkeypatch.setattr(sys, "argv", ["recbole-umi"])  # console_main parses them first (not pytest's)
    with pytest.raises(SystemExit) as exited:
        sys.exit(quick_start.console_main())
    assert exited.value.code == 0
