"""The command line, on a tiny dataset the tests write: one run in a fresh process, one
malformed argument. (What every model and loss learns: tests/test_known_answers.py.)"""

import signal
import subprocess
import sys

import pytest

from recbole_umi.quick_start import main
from tests.conftest import REPO_ROOT, write_config


def cli_args(data_path, model, *extra_files):
    config_file = write_config(data_path / "tiny.yaml", epochs=1, train_neg_sample_args=None)
    files = ",".join(str(f) for f in (config_file, *extra_files))
    return [f"--model={model}", "--dataset=tiny", f"--data_path={data_path}", f"--config_files={files}"]


def test_script_in_a_fresh_process(tiny_data, tmp_path):
    config_file = tmp_path / "extra.yaml"
    config_file.write_text("n_interests: 2\n")
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_recbole_umi.py"), *cli_args(tiny_data, "UMI", config_file), "--state=INFO"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    header, *rows = [line for line in out.stdout.splitlines() if line.startswith((" ", "best validation", "test "))][-3:]
    assert header.split()[:2] == ["recall@5", "precision@5"] and rows[1].startswith("test ")
    assert "RecBole's metrics under RecBole's protocol" in out.stdout
    assert "n_interests = 2" in out.stdout + out.stderr  # the later config file won


def test_malformed_argument_is_rejected(tiny_data):
    with pytest.raises(ValueError, match="--key=value"):
        main(cli_args(tiny_data, "UMI") + ["epochs"])


@pytest.mark.parametrize("argv, message", [
    (["--model=UMII"], "Unknown model 'UMII'"),
    (["--epochs", "2"], "command-line argument '--epochs' is not of the form --key=value"),
    (["--n_interest=8"], "did you mean 'n_interests'"),
    (["--n_interests=0"], "setting 'n_interests' = 0: must be an integer in [1, inf)"),
])
def test_a_users_mistake_is_one_line_and_exit_status_2(argv, message, capsys):
    from recbole_umi.cli import command

    assert command(main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("recbole-umi: error: ") and message in err
    assert err.endswith("(--debug shows the traceback)\n")
    with pytest.raises(Exception, match="UMII|--key=value|n_interest"):  # --debug lets it through
        command(main, [*argv, "--debug"])


def test_the_script_exits_2_on_a_mistake_without_a_traceback(tmp_path):
    out = subprocess.run([sys.executable, str(REPO_ROOT / "run_recbole_umi.py"), "--model=UMII"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.count("\n") == 1


def test_version(tmp_path):
    out = subprocess.run([sys.executable, str(REPO_ROOT / "run_recbole_umi.py"), "--version"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("recbole-umi 0.1.0 (RecBole 1.2.1, torch ")


@pytest.mark.parametrize("argument", ["--version", "--help"])
def test_version_and_help_answer_before_torch_and_recbole_load(argument):
    code = ("import sys\n"
            f"sys.argv = ['recbole-umi', {argument!r}]\n"
            "from recbole_umi.command_line import console_main\n"
            "try:\n    console_main()\nexcept SystemExit as exited:\n    assert exited.code == 0\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'recbole', 'numpy'}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_ctrl_c_names_the_resume_command(tiny_data, tmp_path, monkeypatch, capsys):
    from recbole_umi.cli import command
    from recbole_umi.quick_start import main as run_main
    from tests.conftest import cut_training

    monkeypatch.chdir(tmp_path)
    cut_training(monkeypatch, lambda epoch: epoch == 1)
    args = cli_args(tiny_data, "UMI") + ["--epochs=3", "--eval_protocol=user_split", f"--checkpoint_dir={tmp_path / 'saved'}"]
    assert command(run_main, args) == 130
    [last] = (tmp_path / "saved").glob("*-last.pth")
    expected = f"recbole-umi: interrupted; continue with: python -m recbole_umi --resume={last}\n"
    assert capsys.readouterr().err == expected


def _raise_signal_in_compiled_code(signum):
    """What a stop that lands inside a compiled step does: the handler's KeyboardInterrupt,
    raised in a custom op, reaches Python as the RuntimeError of inductor's C++ wrapper
    (test_a_stop_inside_a_compiled_step_ends_in_one_line shows it on a real compiled graph)."""
    def stop():
        try:
            signal.raise_signal(signum)
        except KeyboardInterrupt:
            raise RuntimeError('aoti_torch_call_dispatcher("recbole_umi::random_words", "", '
                               'dispatch_vars.data()) API call failed') from None
        raise AssertionError("the signal raised nothing")
    return stop


@pytest.mark.parametrize("where", ["eager", "compiled"])
def test_sigterm_ends_a_run_as_ctrl_c_does(tiny_data, tmp_path, monkeypatch, capsys, where):
    """A ``kill`` (what a scheduler or a session's end sends) ends a run in one line that
    names its resume command, status 143; the process's SIGTERM handler is Python's default
    again afterwards (ray's import replaced it: recbole_umi.compat puts it back)."""
    from recbole_umi.cli import as_interrupt, command
    from recbole_umi.quick_start import main as run_main
    from tests.conftest import cut_training

    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # RecBole, and so ray, imported above
    monkeypatch.chdir(tmp_path)
    stop = _raise_signal_in_compiled_code(signal.SIGTERM) if where == "compiled" else (
        lambda: signal.raise_signal(signal.SIGTERM))
    cut_training(monkeypatch, lambda epoch: epoch == 1, stop)
    args = cli_args(tiny_data, "UMI") + ["--epochs=3", "--eval_protocol=user_split", f"--checkpoint_dir={tmp_path / 'saved'}"]
    assert command(run_main, args) == 143
    [last] = (tmp_path / "saved").glob("*-last.pth")
    assert capsys.readouterr().err == f"recbole-umi: terminated; continue with: python -m recbole_umi --resume={last}\n"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert as_interrupt(ValueError("a later error, in no command")) is None  # the stop is forgotten


def test_an_ignored_stop_signal_stays_ignored():
    """A command started with SIGINT ignored (a background job of a script) leaves it so."""
    from recbole_umi.cli import command

    def main(argv):
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # nothing happens

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert command(main, []) == 0
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.compile
def test_a_stop_inside_a_compiled_step_ends_in_one_line(capsys):
    """Ctrl-C that lands in a custom op of a graph compiled as compile_step compiles on the
    CPU (inductor's C++ wrapper) surfaces as a RuntimeError, not a KeyboardInterrupt: the
    command still ends in its one line and status 130, and an error of the same graph that
    follows no signal is still an error."""
    import torch

    from recbole_umi.cli import command
    from recbole_umi.model.base import compiled

    fire = []

    @torch.library.custom_op("recbole_umi_test::poke", mutates_args=())
    def poke(x: torch.Tensor) -> torch.Tensor:
        if fire == ["signal"]:
            signal.raise_signal(signal.SIGINT)
        elif fire == ["error"]:
            raise ValueError("no signal here")
        return x.clone()

    poke.register_fake(lambda x: torch.empty_like(x))
    step = compiled(lambda x: (poke(x * 2) + 1).sum(), cpp_wrapper=True)
    assert step(torch.ones(3)).item() == 9.0  # compiled before any signal
    with pytest.raises(RuntimeError, match="aoti_torch_call_dispatcher"):  # the C++ wrapper's error
        fire[:] = ["error"]
        step(torch.ones(3))
    fire[:] = ["signal"]
    assert command(lambda argv: step(torch.ones(3)), [], prog="python -m recbole_umi.tune", resumable=True) == 130
    assert capsys.readouterr().err.startswith("python -m recbole_umi.tune: interrupted; run the same command again")
    fire[:] = ["error"]
    with pytest.raises(RuntimeError, match="aoti_torch_call_dispatcher"):  # no stop: its traceback
        command(lambda argv: step(torch.ones(3)), [])


def test_help_lists_every_setting_with_its_range_and_default(capsys):
    from recbole_umi.settings import SETTINGS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for key, spec in SETTINGS.items():
        line = next((line for line in out.splitlines() if line.split()[:1] == [key]), None)
        assert line is not None and spec.describe() in line, key
    assert "n_interests                 an integer in [1, inf); default: MatchingRecommender 3; Popularity 1" in out


def test_a_dataset_missing_from_data_path_is_named_before_any_download(tmp_path, monkeypatch):
    from recbole_umi.data.checks import DataError

    import recbole.data.dataset.dataset as recbole_dataset

    monkeypatch.setattr(recbole_dataset.Dataset, "_download", lambda self: pytest.fail("tried to download"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"nowhere/ml-1m/ml-1m.inter: is not there \(the folder does not exist\)"):
        main(["--model=UMI", "--dataset=ml-1m", f"--data_path={tmp_path / 'nowhere'}", "--state=ERROR"])
    (tmp_path / "here" / "ml-1m").mkdir(parents=True)
    with pytest.raises(DataError, match=r"is not there \(it holds nothing\)"):
        main(["--model=UMI", "--dataset=ml-1m", f"--data_path={tmp_path / 'here'}", "--state=ERROR"])


def test_a_pre_split_dataset_is_looked_for_by_its_part_files(tmp_path):
    """RecBole's ``benchmark_filename`` data has ``<dataset>.<part>.inter`` files and no
    ``<dataset>.inter``: the folder check looks for the parts."""
    from recbole_umi.data.checks import DataError
    from recbole_umi.data.protocol import check_dataset_folder

    class Given(dict):
        external_config_dict = {"data_path": True}

    folder = tmp_path / "split"
    folder.mkdir()
    config = Given(data_path=str(folder), dataset="split", offline=False, benchmark_filename=["train", "valid", "test"])
    with pytest.raises(DataError, match=r"split.train.inter: is not there"):
        check_dataset_folder(config)
    for part in ("train", "valid", "test"):
        (folder / f"split.{part}.inter").write_text("user_id:token\titem_id:token\n")
    check_dataset_folder(config)
    with pytest.raises(DataError, match=r"split/split.inter: is not there"):
        check_dataset_folder(Given(config, benchmark_filename=None))


def test_config_files_separated_by_commas_or_spaces():
    from recbole_umi.config import comma_list

    assert comma_list("a.yaml,b.yaml") == comma_list("a.yaml b.yaml") == comma_list(" a.yaml, b.yaml ") == ["a.yaml", "b.yaml"]
    assert comma_list("2020,2021", int) == [2020, 2021] and comma_list(None) == []


def test_every_command_reports_a_mistake_in_one_line(tmp_path, capsys):
    from recbole_umi.cli import command
    from recbole_umi.experiments.compare import main as compare_main
    from recbole_umi.recommend import main as recommend_main

    assert command(compare_main, ["--models=UMI,MIDN", f"--out={tmp_path}"], prog="python -m recbole_umi.compare") == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m recbole_umi.compare: error: ") and "'MIDN'" in err and err.count("\n") == 1
    assert command(recommend_main, [str(tmp_path), "--user=1"], prog="python -m recbole_umi.recommend") == 2
    assert "is not an export (no export.json)" in capsys.readouterr().err


def test_ctrl_c_in_a_resumable_command_says_how_to_continue(capsys):
    from recbole_umi.cli import command

    def interrupted(argv):
        raise KeyboardInterrupt

    assert command(interrupted, [], prog="python -m recbole_umi.compare", resumable=True) == 130
    assert "run the same command again to continue" in capsys.readouterr().err
