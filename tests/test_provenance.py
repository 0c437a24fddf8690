"""recbole_umi.provenance: the code record of every run, and the refusal to mix code versions."""

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from recbole_umi import provenance
from recbole_umi.experiments.runs import check_run_code, run_file
from recbole_umi.experiments.tables import render_code
from recbole_umi.experiments.trials import trials_table
from recbole_umi.provenance import (MixedCodeError, check_same_code, code_key, code_listing, code_records, code_version,
                                    describe_code)

REPOSITORY = Path(__file__).resolve().parent.parent


def test_code_version_names_the_code_and_the_libraries():
    code = code_version()
    assert code["package"] == __import__("recbole_umi").__version__
    assert code["torch"] == metadata.version("torch") and code["recbole"] == "1.2.1"
    assert code["numpy"] == metadata.version("numpy") and code["faiss"] == metadata.version("faiss-cpu")
    assert len(code["code_digest"]) == 16
    if (REPOSITORY / ".git").exists():  # a checkout: the commit of HEAD
        head = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert code["git_commit"] == head.stdout.strip() and isinstance(code["git_dirty"], bool)
    assert json.loads(json.dumps(code)) == code  # plain data for the run files


def test_the_digest_follows_the_code_files_only(tmp_path, monkeypatch):
    package = tmp_path / "recbole_umi"
    (package / "model").mkdir(parents=True)
    (tmp_path / "properties").mkdir()
    (package / "a.py").write_text("x = 1\n")
    (package / "model" / "b.py").write_text("y = 2\n")
    (tmp_path / "properties" / "overall.yaml").write_text("k: 1\n")
    monkeypatch.setattr(provenance, "_PACKAGE_DIR", package)
    first = provenance._digest()
    (package / "notes.md").write_text("docs do not count\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.pyc").write_bytes(b"\0")
    assert provenance._digest() == first
    (tmp_path / "properties" / "overall.yaml").write_text("k: 2\n")  # a default is code
    second = provenance._digest()
    assert second != first
    (package / "model" / "b.py").write_text("y = 3\n")
    assert provenance._digest() not in (first, second)


def test_same_code_is_a_key_and_a_sentence():
    code = code_version()
    later = {**code, "git_commit": "0" * 40, "git_dirty": False}  # only results were committed since
    assert code_key(later) == code_key(code)
    assert code_key({**code, "code_digest": "other"}) != code_key(code)
    assert code_key({**code, "torch": "2.0.0"}) != code_key(code)
    assert code_key(None) is None
    assert describe_code(None).startswith("not recorded")
    assert f"code {code['code_digest']}" in describe_code(code) and f"torch {code['torch']}" in describe_code(code)


def test_check_same_code_names_the_runs_of_each_version():
    code = code_version()
    records = [{"name": "UMI seed 1", "code": code}, {"name": "UMI seed 2", "code": {**code, "code_digest": "x"}},
               {"name": "MIND seed 1", "code": None}]
    with pytest.raises(MixedCodeError, match="3 different code versions") as error:
        check_same_code(records, "the table")
    message = str(error.value)
    assert "UMI seed 1" in message and "not recorded" in message and "--allow_mixed_code=True" in message
    assert len(check_same_code(records, "the table", allow_mixed=True)) == 3
    assert len(check_same_code(records[:1] * 2, "the table")) == 1


def test_compare_refuses_to_add_runs_of_other_code(tmp_path):
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    old = {**code_version(), "code_digest": "an older code"}
    run_file(out, "UMI", 1).write_text(json.dumps({"seed": 1, "code": old}))
    jobs = [("UMI", 1), ("UMI", 2)]
    with pytest.raises(MixedCodeError, match=r"UMI seed 2 \(to run now\)"):
        check_run_code(out, jobs)
    check_run_code(out, jobs, allow_mixed_code=True)
    check_run_code(out, jobs[:1])  # only finished runs, all of one code: a table can be made
    # a table of runs of two codes lists them, when allowed
    results = {"UMI": [{"seed": 1, "code": old}, {"seed": 2, "code": code_version()}]}
    with pytest.raises(MixedCodeError):
        render_code(results)
    listed = render_code(results, allow_mixed=True)
    assert "2 code versions" in listed and "code an older code" in listed and "UMI seed 2" in listed
    assert render_code({"UMI": results["UMI"][1:]}).startswith("Code: recbole-umi")


def test_a_run_continued_on_other_code_is_a_run_of_both(tmp_path):
    """A run's ``code`` names the code that finished it; its parts name every code it ran:
    the checks and lists of code versions count them all."""
    code = code_version()
    old = {**code, "code_digest": "an older code"}
    continued = {"seed": 1, "code": code, "parts": [{"seconds": 60.0, "code": old, "machine": None},
                                                   {"seconds": 30.0, "code": code, "machine": None}]}
    resumed = {"seed": 2, "code": code, "parts": [{"seconds": 60.0, "code": code, "machine": None},
                                                 {"seconds": 5.0, "code": code, "machine": None}]}
    assert code_records("UMI seed 1", continued) == [{"name": "UMI seed 1 (in part)", "code": old},
                                                     {"name": "UMI seed 1 (in part)", "code": code}]
    assert code_records("UMI seed 2", resumed) == [{"name": "UMI seed 2", "code": code}]  # one code, twice
    assert code_records("a run of before parts", {"code": code}) == [{"name": "a run of before parts", "code": code}]
    # an earlier part kept by an elapsed.json of the time alone
    timed_only = {"code": code, "parts": [{"seconds": 9.0, "code": None, "machine": None}]}
    assert [record["code"] for record in code_records("x", timed_only)] == [None, code]
    results = {"UMI": [continued, resumed]}
    with pytest.raises(MixedCodeError, match=r"UMI seed 1 \(in part\)"):
        render_code(results)
    listed = render_code(results, allow_mixed=True)
    assert "2 code versions" in listed and "code an older code" in listed and "UMI seed 1 (in part)" in listed
    assert render_code({"UMI": [resumed]}).startswith("Code: recbole-umi")
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    run_file(out, "UMI", 1).write_text(json.dumps(continued))
    with pytest.raises(MixedCodeError, match=r"UMI seed 1 \(in part\)"):
        check_run_code(out, [("UMI", 1)])
    # a search's trials.md lists the trial under both
    trial = {"trial": 6, "params": {"lr": 0.1}, "best_valid_score": 0.4, "best_valid_result": {"recall@50": 0.4},
             "test_result": {"recall@50": 0.3}, "epochs": 3, "best_epoch": 2, "wall_s": 90.0,
             **{k: continued[k] for k in ("code", "parts")}}
    table = trials_table([trial], trial)
    assert "Trials of 2 code versions" in table
    assert f"- {describe_code(old)}: trials 6 (in part)" in table
    assert f"- {describe_code(code)}: trials 6 (in part)" in table


def test_a_listing_of_code_groups_as_the_check_does():
    """Runs of one code made from two commits (results committed between them) are one version,
    whose line names both commits; the heading counts the lines that follow."""
    code = {**code_version(), "git_commit": "a" * 40, "git_dirty": False}
    later = {**code, "git_commit": "b" * 40}
    other = {**code, "code_digest": "other"}
    one = code_listing([{"name": "UMI seed 1", "code": code}, {"name": "UMI seed 2", "code": later}], "the table")
    assert one == [f"Code: {describe_code(code, later)}."]
    assert "(commit aaaaaaaaaa, commit bbbbbbbbbb)" in one[0]
    records = [{"name": "UMI seed 1", "code": code}, {"name": "UMI seed 2", "code": later},
               {"name": "MIND seed 1", "code": other}, {"name": "MIND seed 2", "code": None}]
    listed = code_listing(records, "the table", allow_mixed=True, runs="Trials")
    assert listed == ["Trials of 3 code versions (--allow_mixed_code):", "",
                      f"- {describe_code(code, later)}: UMI seed 1, UMI seed 2",
                      f"- {describe_code(other)}: MIND seed 1", f"- {describe_code(None)}: MIND seed 2"]
    with pytest.raises(MixedCodeError, match="commit aaaaaaaaaa, commit bbbbbbbbbb"):
        code_listing(records, "the table")
    same_commit = [{"name": "UMI seed 1", "code": code}, {"name": "UMI seed 3", "code": dict(code)}]
    assert code_listing(same_commit, "the table") == [f"Code: {describe_code(code)}."]  # the commit named once
    assert "(commit aaaaaaaaaa); " in describe_code(code, dict(code))
    assert code_listing([], "the table") == []  # no runs: nothing to list


def test_provenance_is_light():
    done = subprocess.run([sys.executable, "-c", "import sys, recbole_umi.provenance as p; p.code_version(); "
                           "print(sorted(m for m in ('torch', 'recbole', 'faiss') if m in sys.modules))"],
                          capture_output=True, text=True, cwd=REPOSITORY)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
