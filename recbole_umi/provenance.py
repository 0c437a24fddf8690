"""Which code a run ran: recorded in every run file of ``compare`` and trial file of ``tune``.

:func:`code_version` gives the package version, the git commit of a source checkout and
whether the package's files differ from it, a digest of the package's own files (its Python
modules and its YAML defaults), and the versions of Python and of the libraries that shape
the numbers (torch, RecBole, numpy, faiss). :func:`code_key` is what two runs must share to
stand in one table: the digest and the library versions, not the commit, which also moves
when only results or docs are committed.

:func:`machine` says what it ran on (the CPU, its vector instructions as torch uses them, a GPU):
a run that spans sessions may run its parts on different machines, whose float rounding
differs (``RunClock`` in :mod:`recbole_umi.experiments.runs` records each part's).

Light on purpose: no torch, no RecBole (versions come from the installed packages' metadata;
``machine`` asks torch only where the process has imported it).

Example::

    record["code"] = code_version()
    if code_key(a["code"]) != code_key(b["code"]): ...   # runs of different code
"""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["LIBRARIES", "code_version", "code_key", "describe_code", "code_records", "code_listing",
           "MixedCodeError", "check_same_code", "machine"]

_PACKAGE_DIR = Path(__file__).resolve().parent
# The folders whose files are the package's code and defaults (a source checkout keeps the
# YAML folders beside the package, a wheel inside it).
_CODE_FOLDERS = ("recbole_umi", "properties", "dataset_configs")
# distribution names per library: the first one installed is reported
LIBRARIES = {"torch": ("torch",), "recbole": ("recbole",), "numpy": ("numpy",),
             "faiss": ("faiss-cpu", "faiss-gpu", "faiss")}


def _version_of(distributions: tuple[str, ...]) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _code_files() -> list[Path]:
    roots = [_PACKAGE_DIR, *(_PACKAGE_DIR.parent / name for name in _CODE_FOLDERS[1:])]
    files = []
    for root in roots:
        if root.is_dir():
            files += [p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml")]
    return sorted(files)


def _digest() -> str:
    """SHA-256 over every code file's path (relative to the package's parent) and bytes."""
    digest = hashlib.sha256()
    base = _PACKAGE_DIR.parent
    for path in _code_files():
        digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _git(*args: str) -> str | None:
    root = _PACKAGE_DIR.parent
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """``{"package", "code_digest", "git_commit", "git_dirty", "python", "torch", "recbole",
    "numpy", "faiss"}`` of this process (computed once; a long process reports the code it
    started with). ``git_commit`` / ``git_dirty`` are None outside a git checkout (an
    installed wheel); ``git_dirty`` is True when the package's code files differ from the
    commit (results and docs do not count)."""
    from recbole_umi import __version__

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--", *_CODE_FOLDERS) if commit else None
    return {
        "package": __version__,
        "code_digest": _digest(),
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        **{name: _version_of(distributions) for name, distributions in LIBRARIES.items()},
    }


# What two runs must share to be runs of the same code.
_KEY_FIELDS = ("package", "code_digest", "python", *LIBRARIES)


def code_key(code: dict | None) -> tuple | None:
    """The part of a :func:`code_version` record that decides whether two runs ran the same
    code; None for a run recorded before code versions were (unknown code)."""
    return None if code is None else tuple(code.get(field) for field in _KEY_FIELDS)


def describe_code(code: dict | None, *same: dict) -> str:
    """One line: ``"recbole-umi 0.1.0, code 1a2b... (commit 3c4d... with uncommitted changes);
    python 3.11.7, torch 2.13.0, ..."``. ``same``: records of the same :func:`code_key` made
    from other commits (results committed between runs), whose commits it names too."""
    if code is None:
        return "not recorded (a run made before code versions were kept)"
    commits = []
    for made in (code, *same):
        commit = "no git" if made.get("git_commit") is None else f"commit {made['git_commit'][:10]}"
        commit += " with uncommitted changes" if made.get("git_dirty") else ""
        if commit not in commits:
            commits.append(commit)
    libraries = ", ".join(f"{name} {code.get(name)}" for name in ("python", *LIBRARIES))
    return f"recbole-umi {code.get('package')}, code {code.get('code_digest')} ({', '.join(commits)}); {libraries}"


def code_records(name: str, run: dict) -> list[dict]:
    """``[{"name", "code"}]``: each code the record ``run`` (a comparison's run, a search's
    trial) ran, once, in the order of its parts (``parts``, kept by
    :class:`recbole_umi.experiments.runs.RunClock`: a run continued from its checkpoint on other
    code ran both, and its ``code`` names only the last), for :func:`check_same_code`; ``name``
    marked "(in part)" where there are several. A record without parts: its ``code``."""
    codes: dict = {}
    for code in [*(part.get("code") for part in run.get("parts") or []), run.get("code")]:
        codes.setdefault(code_key(code), code)
    marked = f"{name} (in part)" if len(codes) > 1 else name
    return [{"name": marked, "code": code} for code in codes.values()]


def _by_code(records: list[dict]) -> dict:
    """``{code key: [records]}``: ``records`` grouped by :func:`code_key`, in first-seen order
    (the one grouping :func:`check_same_code` and the listings use)."""
    groups: dict = {}
    for record in records:
        groups.setdefault(code_key(record.get("code")), []).append(record)
    return groups


def _described(groups: dict) -> dict:
    """``{code key: describe_code(...)}`` of :func:`_by_code`'s ``groups``, naming each key's
    every commit."""
    return {key: describe_code(*(record.get("code") for record in same)) for key, same in groups.items()}


class MixedCodeError(ValueError):
    """Runs of different code would go into one table."""


def _checked(records: list[dict], what: str, allow_mixed: bool) -> dict:
    """:func:`_by_code` of ``records``, after :func:`check_same_code`'s check."""
    by_code = _by_code(records)
    if len(by_code) > 1 and not allow_mixed:
        described = _described(by_code)
        lines = [f"  {described[key]}: {', '.join(record['name'] for record in same)}"
                 for key, same in by_code.items()]
        raise MixedCodeError(
            f"{what} would mix runs of {len(by_code)} different code versions:\n" + "\n".join(lines)
            + "\nrerun them on one code version, or pass --allow_mixed_code=True to make the table anyway "
            "(it then lists the versions)"
        )
    return by_code


def check_same_code(records: list[dict], what: str, allow_mixed: bool = False) -> dict:
    """``{code key: [names]}`` of ``records`` (each with ``"code"`` and ``"name"``); with
    more than one key and not ``allow_mixed``, :class:`MixedCodeError` naming the runs of
    each code (``what``: the table, for the message)."""
    by_code = _checked(records, what, allow_mixed)
    return {key: [record["name"] for record in same] for key, same in by_code.items()}


def code_listing(records: list[dict], what: str, allow_mixed: bool = False, runs: str = "Runs",
                 named: str = "") -> list[str]:
    """Markdown lines naming the code ``records`` ran (each with ``"code"`` and ``"name"``),
    grouped as :func:`check_same_code` groups them (its check applies: several versions only
    with ``allow_mixed``): ``["Code: <version>."]`` for one version, else a heading (``runs``:
    what the records are) and a line a version, its records' names after ``named``; none for no
    records. A version's line names every commit its records were made from."""
    by_code = _checked(records, what, allow_mixed)
    if not by_code:
        return []
    described = _described(by_code)
    if len(by_code) == 1:
        return [f"Code: {next(iter(described.values()))}."]
    lines = [f"{runs} of {len(by_code)} code versions (--allow_mixed_code):", ""]
    return lines + [f"- {described[key]}: {named}{', '.join(record['name'] for record in same)}"
                    for key, same in by_code.items()]


@functools.lru_cache(maxsize=1)
def _cpu_name() -> str | None:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine() -> dict:
    """``{"cpu", "cpu_capability", "gpu"}`` of this process's machine: the CPU's model name,
    the vector instructions torch's CPU kernels use (``"AVX512"``, ``"AVX2"``, ...) and the
    first GPU's name, the last two None where the process has not imported torch (yet: they
    are asked each call, so an early call does not fix them) or has no GPU."""
    cpu = _cpu_name()
    torch = sys.modules.get("torch")
    capability = gpu = None
    if torch is not None:
        capability = torch.backends.cpu.get_cpu_capability()
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_capability": capability, "gpu": gpu}
