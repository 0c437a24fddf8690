"""Checkpoints: plain data only, loaded weights-only everywhere, resumed bit-identically.

One module fixture trains UMI for 4 epochs on a tiny user-split dataset (one random target
per user and epoch, so both the shuffling generator and the target generator of the
training loader matter) and keeps its best and ``-last`` checkpoints. The tests then
  - read both files with ``torch.load(weights_only=True)`` and check what they hold;
  - kill the same run in its third epoch and resume it from its ``-last`` file: the same
    results and the same final weights, optimizer and random states, bit for bit;
    control: resuming without restoring the random states ends elsewhere;
  - load the best file in a fresh process (torch.load may not be called with
    weights_only=False there) with ``recbole_umi.load`` and the CLI's ``--evaluate``: the
    same scores as the in-process model and the same test result as the run;
  - damage the file (truncated, bytes flipped): one CheckpointError naming it, never a
    silently different model; control: torch alone loads some flips as other weights;
  - try a pickle whose ``__reduce__`` writes a marker file on every entry point: refused,
    no marker; control: ``weights_only=False`` does write it;
  - refuse RecBole's own format with a pointer to the trusted conversion, and convert;
  - refuse data whose ids differ; save SASRec (a RecBole model) in the same format.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole.data.interaction import Interaction  # noqa: E402
from recbole.trainer import Trainer as RecBoleTrainer  # noqa: E402

import recbole_umi  # noqa: E402
from recbole_umi import checkpoint  # noqa: E402
from recbole_umi.checkpoint import CheckpointError, get_trainer, last_checkpoint_path  # noqa: E402
from recbole_umi.checkpoints import trainer as checkpoint_trainer  # noqa: E402
from recbole_umi.checkpoints.format import write_checkpoint  # noqa: E402
from recbole_umi.config import Config  # noqa: E402
from recbole_umi.provenance import code_version  # noqa: E402
from recbole_umi.quick_start import main, run  # noqa: E402
from tests.conftest import REPO_ROOT, build, random_sequences, tiny_config, write_atomic  # noqa: E402

# lr 0.02: the best validation epoch on this data is the last, after the interruption
SETTINGS = {"eval_protocol": "user_split", "train_sampling": "one_per_user", "learning_rate": 0.02}
EPOCHS, CUT = 4, 2


def best_file(folder: Path) -> Path:
    (best,) = [p for p in folder.glob("UMI-*.pth") if not p.stem.endswith("-last")]
    return best


def first_batch(loader) -> dict[str, torch.Tensor]:
    return dict(next(iter(loader))[0].interaction)


def scores_of(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.full_sort_predict(Interaction(dict(batch)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The uninterrupted 4-epoch run: its folders, settings, result and checkpoints."""
    work = tmp_path_factory.mktemp("checkpoint")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)  # RecBole writes log/ and log_tensorboard/ into the working directory
        sequences, profiles = random_sequences()
        data = write_atomic(work / "data", "tiny", sequences, profiles)
        settings = tiny_config(data, epochs=EPOCHS, **SETTINGS)
        result = run("UMI", "tiny", config_dict={**settings, "checkpoint_dir": str(work / "full")})
        best = best_file(work / "full")
        yield SimpleNamespace(work=work, data=data, settings=settings, result=result, best=best, last=last_checkpoint_path(best))


def test_checkpoints_hold_plain_data_only(trained):
    best = torch.load(trained.best, weights_only=True)
    last = torch.load(trained.last, weights_only=True)
    assert (best["kind"], last["kind"], last["epoch"]) == ("best", "last", EPOCHS - 1)
    assert best["best_valid_result"] == {k: float(v) for k, v in trained.result["best_valid_result"].items()}
    config = last["config"]
    assert yaml.safe_load(yaml.safe_dump(config)) == config and json.loads(json.dumps(config)) == config
    assert config["n_interests"] == 3 and config["MODEL_TYPE"] == "SEQUENTIAL"
    assert not {"device", "checkpoint_dir", "local_rank"} & config.keys()
    assert last["ids"]["item_id"][0] == "[PAD]" and len(last["ids"]["item_id"]) == 41
    assert {"user_id", "item_id", "gender"} <= last["ids"].keys()  # gender: a profile token field
    assert set(last["rng"]["loaders"]["train"]) == {"generator", "target_generator"}
    assert last["best_file"] == trained.best.name
    # each file names the code that wrote it, and load hands it on
    assert best["code"] == last["code"] == code_version() and best["code"]["code_digest"]
    assert checkpoint.load(trained.last).info["code"] == code_version()
    # the rebuilt config is the saved one
    assert checkpoint.plain_config(checkpoint.checkpoint_config(trained.last)) == config
    assert recbole_umi.load is checkpoint.load and recbole_umi.CheckpointError is CheckpointError


def _same_tensors(a, b) -> bool:
    """Equal nested data, tensors compared exactly."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b))
    return a == b


class _Killed(Exception):
    """Stands for the end of a process in the middle of an epoch."""


def test_resumed_run_ends_as_the_uninterrupted_one(trained, monkeypatch):
    monkeypatch.chdir(trained.work)
    train_epoch = RecBoleTrainer._train_epoch

    def killed_in_epoch_cut(self, train_data, epoch_idx, *args, **kwargs):
        if epoch_idx == CUT:
            raise _Killed
        return train_epoch(self, train_data, epoch_idx, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(RecBoleTrainer, "_train_epoch", killed_in_epoch_cut)
        with pytest.raises(_Killed):
            run("UMI", "tiny", config_dict={**trained.settings, "checkpoint_dir": str(trained.work / "cut")})
    cut_last = last_checkpoint_path(best_file(trained.work / "cut"))
    assert torch.load(cut_last, weights_only=True)["epoch"] == CUT - 1  # the last finished epoch
    control = shutil.copytree(trained.work / "cut", trained.work / "control")  # resuming rewrites the files

    resumed = run(resume=str(cut_last))
    full = trained.result
    assert resumed["best_valid_result"] == full["best_valid_result"]
    assert resumed["test_result"] == full["test_result"]
    assert resumed["best_valid_score"] == full["best_valid_score"]
    # bit for bit: weights, optimizer moments, early stopping, every random state
    ended, expected = torch.load(cut_last, weights_only=True), torch.load(trained.last, weights_only=True)
    for key in ("epoch", "cur_step", "best_valid_score", "state_dict", "optimizer", "rng"):
        assert _same_tensors(ended[key], expected[key]), key
    # the best epoch, which the test scores, came after the interruption: the same weights
    resumed_best, full_best = (torch.load(best_file(f), weights_only=True) for f in (trained.work / "cut", trained.work / "full"))
    assert resumed_best["epoch"] == full_best["epoch"] >= CUT
    assert (resumed["epochs"], resumed["best_epoch"]) == (full["epochs"], full["best_epoch"]) == (EPOCHS, full_best["epoch"])
    assert _same_tensors(resumed_best["state_dict"], full_best["state_dict"])

    # Control: the same resume without the saved random states ends with other weights.
    monkeypatch.setattr(checkpoint_trainer, "restore_rng_state", lambda state, loaders: None)
    run(resume=str(last_checkpoint_path(best_file(control))))
    unrestored = torch.load(last_checkpoint_path(best_file(control)), weights_only=True)
    assert not _same_tensors(unrestored["state_dict"], expected["state_dict"])


@pytest.mark.parametrize("killed_epoch", [1, EPOCHS - 1])
def test_a_run_stopped_between_its_best_and_last_writes_resumes_from_the_best(trained, monkeypatch, killed_epoch):
    """RecBole writes a new best epoch's file before the -last file of that epoch. Killed
    between the two, the -last holds the epoch before; resuming it continues from the best
    file (the later state) without training that epoch again, and ends bit for bit as the
    uninterrupted run, every validation score kept: killed in a middle epoch (training goes
    on) and in the last (the run is finished). Each of the full run's validations was a new
    best (this data's scores tie, and ties count as new bests)."""
    monkeypatch.chdir(trained.work)
    save_last = checkpoint_trainer.SafeCheckpointTrainer._save_last

    def killed_before_the_last_write(self, epoch):
        if epoch == killed_epoch:
            raise _Killed
        return save_last(self, epoch)

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint_trainer.SafeCheckpointTrainer, "_save_last", killed_before_the_last_write)
        with pytest.raises(_Killed):
            run("UMI", "tiny", config_dict={**trained.settings, "checkpoint_dir": str(trained.work / f"between{killed_epoch}")})
    best = best_file(trained.work / f"between{killed_epoch}")
    last = last_checkpoint_path(best)
    assert torch.load(last, weights_only=True)["epoch"] == killed_epoch - 1
    assert torch.load(best, weights_only=True)["epoch"] == killed_epoch

    train_epoch = RecBoleTrainer._train_epoch
    trained_epochs = []

    def counted(self, train_data, epoch_idx, *args, **kwargs):
        trained_epochs.append(epoch_idx)
        return train_epoch(self, train_data, epoch_idx, *args, **kwargs)

    monkeypatch.setattr(RecBoleTrainer, "_train_epoch", counted)
    resumed = run(resume=str(last))
    full = trained.result
    assert trained_epochs == list(range(killed_epoch + 1, EPOCHS))
    for key in ("best_valid_result", "test_result", "best_valid_score", "epochs", "best_epoch", "valid_scores"):
        assert resumed[key] == full[key], key
    assert len(resumed["valid_scores"]) == EPOCHS
    ended, expected = torch.load(last, weights_only=True), torch.load(trained.last, weights_only=True)
    for key in ("epoch", "cur_step", "best_valid_score", "state_dict", "optimizer", "rng", "valid_scores"):
        assert _same_tensors(ended[key], expected[key]), key


def test_resuming_from_the_best_file_keeps_its_validation_score(trained, monkeypatch, tmp_path):
    """The best file is written before fit records its own validation's score: the file
    holds it, and a run resumed from it counts that validation (a search's stop rule reads
    the count). A file written before it held the score gets it added on resume."""
    monkeypatch.chdir(trained.work)
    folder = shutil.copytree(trained.best.parent, tmp_path / "from-best")
    best = torch.load(trained.best, weights_only=True)
    assert best["valid_scores"] == trained.result["valid_scores"][: best["epoch"] + 1]
    resumed = run(resume=str(folder / trained.best.name))
    assert resumed["valid_scores"] == trained.result["valid_scores"] and len(resumed["valid_scores"]) == EPOCHS
    older = {**best, "valid_scores": best["valid_scores"][:-1]}  # as written before valid_scores_complete
    for key in ("valid_scores_complete", "digest"):
        del older[key]
    write_checkpoint(folder / trained.best.name, older)
    assert run(resume=str(folder / trained.best.name))["valid_scores"] == trained.result["valid_scores"]


def test_a_best_file_written_without_validation_adds_no_score(trained, monkeypatch, tmp_path):
    """With eval_step 0 RecBole writes the best file every epoch without validating; a run
    resumed that way after validated epochs, killed between the two writes of an epoch,
    ends with the uninterrupted run's validation scores (no score added for the epoch)."""
    monkeypatch.chdir(trained.work)
    folders = [shutil.copytree(trained.best.parent, tmp_path / name) for name in ("whole", "killed")]
    more = {"epochs": EPOCHS + 3, "eval_step": 0}
    whole = run(resume=str(last_checkpoint_path(folders[0] / trained.best.name)), config_dict=more)
    save_last = checkpoint_trainer.SafeCheckpointTrainer._save_last

    def killed_before_the_last_write(self, epoch):
        if epoch == EPOCHS + 1:
            raise _Killed
        return save_last(self, epoch)

    last = last_checkpoint_path(folders[1] / trained.best.name)
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint_trainer.SafeCheckpointTrainer, "_save_last", killed_before_the_last_write)
        with pytest.raises(_Killed):
            run(resume=str(last), config_dict=more)
    assert torch.load(last, weights_only=True)["epoch"] == EPOCHS
    resumed = run(resume=str(last), config_dict=more)
    assert resumed["valid_scores"] == whole["valid_scores"] == trained.result["valid_scores"]
    assert resumed["epochs"] == whole["epochs"] == EPOCHS + 3


def test_resume_settings_override_the_saved_ones(trained):
    """``run(resume=..., config_dict={"epochs": 8})`` trains on to epoch 8: the checkpoint's
    settings are the lowest user layer."""
    assert checkpoint.checkpoint_config(trained.last)["epochs"] == EPOCHS
    assert checkpoint.checkpoint_config(trained.last, config_dict={"epochs": 8})["epochs"] == 8
    with pytest.raises(CheckpointError, match="holds a model 'UMI', not 'MIND'"):
        checkpoint.checkpoint_config(trained.last, model="MIND")


# The fresh process: argv = repo root, checkpoint, batch file, output file. torch.load may
# only be called weights-only there.
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import torch
_torch_load = torch.load
def weights_only_load(*args, **kwargs):
    if kwargs.get("weights_only") is False:
        raise AssertionError("torch.load(weights_only=False) was called")
    return _torch_load(*args, **{**kwargs, "weights_only": True})
torch.load = weights_only_load
import recbole_umi
from recbole.data.interaction import Interaction
from recbole_umi.quick_start import main
loaded = recbole_umi.load(sys.argv[2])
batch = torch.load(sys.argv[3])
with torch.no_grad():
    scores = loaded.model.full_sort_predict(Interaction(batch))
result = main(["--evaluate=" + sys.argv[2]])
torch.save({"scores": scores, "training": loaded.model.training, "package": recbole_umi.__file__,
            "test_result": {k: float(v) for k, v in result["test_result"].items()},
            "interest_diagnostics": result["interest_diagnostics"]}, sys.argv[4])
"""


def test_load_in_a_fresh_process_scores_like_the_trained_model(trained, monkeypatch):
    monkeypatch.chdir(trained.work)
    # In this process: the model rebuilt as the tests build models, given the saved weights.
    _, _, valid_data, model = build(trained.data, "UMI", epochs=EPOCHS, **SETTINGS)
    batch = first_batch(valid_data)
    before = scores_of(model, batch)
    model.load_state_dict(torch.load(trained.best, weights_only=True)["state_dict"])
    expected = scores_of(model, batch)
    torch.save(batch, trained.work / "batch.pt")

    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO_ROOT), str(trained.best), str(trained.work / "batch.pt"), str(trained.work / "child.pt")],
        capture_output=True, text=True, cwd=trained.work, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    child = torch.load(trained.work / "child.pt", weights_only=True)
    assert Path(child["package"]).resolve().is_relative_to(REPO_ROOT)
    assert child["training"] is False
    torch.testing.assert_close(child["scores"], expected, rtol=0, atol=0)
    assert (before - expected).abs().max() > 1e-3  # control: other weights score otherwise
    assert child["test_result"] == {k: float(v) for k, v in trained.result["test_result"].items()}
    test_line = next(line for line in out.stdout.splitlines() if line.startswith("test "))
    assert float(test_line.split()[1]) == pytest.approx(trained.result["test_result"]["recall@5"], abs=1e-4)
    # the reloaded model's interest diagnostics are those the run recorded for its best epoch
    recorded, reloaded = trained.result["interest_diagnostics"], child["interest_diagnostics"]
    assert reloaded.keys() == recorded.keys()
    for key, value in recorded.items():  # one by one: pytest.approx takes no list inside a dict
        assert reloaded[key] == (None if value is None else pytest.approx(value, abs=1e-6)), key
    assert f"mean cosine between a user's interests {recorded['interest_cosine']:.2f}" in out.stdout


def test_damaged_files_give_one_clear_error(trained, tmp_path):
    """Every truncation, and every byte flip that changes what the file holds, is one
    CheckpointError naming the file. A flip in bytes torch never uses (the zip's duplicate
    header fields and alignment padding, a pickle memo slot) loads the saved content
    exactly, which is checked too: nothing loads as another model."""
    data = trained.best.read_bytes()
    saved = torch.load(trained.best, weights_only=True)
    damaged = {f"cut{n}": data[:n] for n in (0, 10, len(data) // 3, len(data) // 2, len(data) - 1)}
    positions = range(0, len(data), max(1, len(data) // 80))
    damaged.update({f"flip{i}": data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :] for i in positions})
    refused = changed_by_torch_alone = 0
    for name, content in damaged.items():
        path = tmp_path / f"{name}.pth"
        path.write_bytes(content)
        try:
            intact = _same_tensors(checkpoint.read_checkpoint(path), saved)
            assert name.startswith("flip") and intact, name
        except CheckpointError as error:
            assert str(path) in str(error) and error.path == path
            assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)  # no chain
            refused += 1
        try:
            changed_by_torch_alone += not _same_tensors(torch.load(path, weights_only=True), saved)
        except Exception:  # noqa: BLE001
            pass
    assert refused > len(damaged) // 2
    # Control: torch alone loads some damaged files as other content (a flipped weight byte
    # goes unnoticed without the digest).
    assert changed_by_torch_alone > 0
    with pytest.raises(CheckpointError, match="no such file"):
        checkpoint.read_checkpoint(tmp_path / "absent.pth")


class _WritesMarker:
    """Unpickled, it creates (opens for writing) the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def malicious(trained):
    """A file in RecBole's checkpoint layout whose config writes a marker when unpickled."""
    marker = trained.work / "marker"
    path = trained.work / "malicious.pth"
    plain = torch.load(trained.best, weights_only=True)
    torch.save({**plain, "config": _WritesMarker(marker)}, path)
    # Control: loading it fully does write the marker.
    opened = torch.load(path, weights_only=False)["config"]
    opened.close()
    assert marker.exists()
    marker.unlink()
    return SimpleNamespace(path=path, marker=marker)


def _recbole_trainer(trained, safe: bool):
    config, _, valid_data, model = build(trained.data, "UMI", epochs=EPOCHS, **SETTINGS)
    trainer_class = get_trainer(config["MODEL_TYPE"], config["model"]) if safe else RecBoleTrainer
    return trainer_class(config, model), valid_data


def _entry_points():
    from recbole.quick_start import load_data_and_model

    return {
        "recbole_umi.load": (lambda t, p: recbole_umi.load(p), CheckpointError),
        "cli --evaluate": (lambda t, p: main([f"--evaluate={p}"]), CheckpointError),
        "run(resume=...)": (lambda t, p: run(resume=p), CheckpointError),
        "plugin trainer resume_checkpoint": (lambda t, p: _recbole_trainer(t, True)[0].resume_checkpoint(p), CheckpointError),
        "plugin trainer evaluate(model_file)": (
            lambda t, p: (lambda tr, v: tr.evaluate(v, model_file=p))(*_recbole_trainer(t, True)), CheckpointError),
        "RecBole Trainer.resume_checkpoint": (lambda t, p: _recbole_trainer(t, False)[0].resume_checkpoint(p), pickle.UnpicklingError),
        "RecBole Trainer.evaluate(model_file)": (
            lambda t, p: (lambda tr, v: tr.evaluate(v, model_file=p))(*_recbole_trainer(t, False)), pickle.UnpicklingError),
        "RecBole load_data_and_model": (lambda t, p: load_data_and_model(str(p)), pickle.UnpicklingError),
    }


@pytest.mark.parametrize("entry", list(_entry_points()))
def test_malicious_pickle_is_refused_everywhere(trained, malicious, monkeypatch, entry):
    monkeypatch.chdir(trained.work)
    call, error = _entry_points()[entry]
    with pytest.raises(error) as caught:
        call(trained, malicious.path)
    assert not malicious.marker.exists()
    if error is CheckpointError:
        assert "refused" in str(caught.value) and "io.open" in str(caught.value)


def test_recbole_format_is_refused_with_the_way_to_convert_it(trained, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(trained.work)
    config, _, valid_data, model = build(trained.data, "UMI", epochs=EPOCHS, **SETTINGS)
    old = tmp_path / "recbole.pth"
    RecBoleTrainer(config, model)._save_checkpoint(0, verbose=False, saved_model_file=str(old))
    with pytest.raises(CheckpointError, match=r"RecBole's own format.*convert_recbole_checkpoint\(torch.load\("):
        recbole_umi.load(old)
    with pytest.raises(CheckpointError, match="not a loaded RecBole checkpoint: config, epoch, .* missing"):
        checkpoint.convert_recbole_checkpoint({"state_dict": {}}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="takes the loaded checkpoint, not its path"):
        checkpoint.convert_recbole_checkpoint(old, tmp_path / "bad.pth")  # the old way: a path

    trusted = torch.load(old, map_location="cpu", weights_only=False)  # the user's own decision, in their code
    converted = checkpoint.convert_recbole_checkpoint(trusted, tmp_path / "converted.pth", source=old)
    assert torch.load(converted, weights_only=True)["ids"] is None
    assert torch.load(converted, weights_only=True)["converted_from"] == str(old)
    with caplog.at_level(logging.WARNING):
        loaded = recbole_umi.load(converted)
    assert "records no id mappings" in caplog.text
    assert loaded.info["code"] is None  # the code that trained a RecBole file is not known
    batch = first_batch(valid_data)
    torch.testing.assert_close(scores_of(loaded.model, batch), scores_of(model, batch), rtol=0, atol=0)


def test_other_data_are_refused(trained, tmp_path):
    sequences, profiles = random_sequences(seed=1)
    other = write_atomic(tmp_path / "other", "tiny", sequences, profiles)
    with pytest.raises(CheckpointError, match="the data differ from those the model was trained on"):
        recbole_umi.load(trained.best, data_path=other)


def test_recbole_models_save_the_same_format(trained, monkeypatch):
    monkeypatch.chdir(trained.work)
    settings = {**trained.settings, "epochs": 1, "train_neg_sample_args": None, "checkpoint_dir": str(trained.work / "sasrec")}
    result = run("SASRec", "tiny", config_dict=settings)
    (best,) = [p for p in (trained.work / "sasrec").glob("SASRec-*.pth") if not p.stem.endswith("-last")]
    assert torch.load(best, weights_only=True)["format"] == checkpoint.FORMAT
    assert checkpoint.evaluate_checkpoint(best)["test_result"] == result["test_result"]
    # RecBole's own Trainer reads the file too (weights-only): the entries keep its names.
    loaded = recbole_umi.load(best)
    assert RecBoleTrainer(loaded.config, loaded.model).evaluate(loaded.test_data, model_file=str(best)) == result["test_result"]


def test_resuming_an_early_stopped_run_trains_no_further_epoch(trained, monkeypatch, tmp_path):
    """The -last file of the epoch early stopping ended is written before RecBole's loop
    breaks: resuming it must not train on."""
    monkeypatch.chdir(trained.work)
    settings = {**trained.settings, "epochs": 40, "stopping_step": 1, "checkpoint_dir": str(tmp_path / "stopped")}
    result = run("UMI", "tiny", config_dict=settings)
    last = last_checkpoint_path(best_file(tmp_path / "stopped"))
    saved = torch.load(last, weights_only=True)
    assert saved["epoch"] < 39 and saved["cur_step"] > 1  # early stopping ended it
    best_epoch = torch.load(best_file(tmp_path / "stopped"), weights_only=True)["epoch"]
    assert (result["epochs"], result["best_epoch"]) == (saved["epoch"] + 1, best_epoch)
    monkeypatch.setattr(RecBoleTrainer, "_train_epoch", lambda *a, **k: pytest.fail("trained after early stopping"))
    resumed = run(resume=str(last))
    assert resumed["test_result"] == result["test_result"]
    assert (resumed["epochs"], resumed["best_epoch"]) == (result["epochs"], result["best_epoch"])


@pytest.mark.parametrize("eval_step, epochs, best_epoch", [(1, 5, 1), (2, 10, 3)])
def test_epochs_trained_and_best_epoch_known_answer(trained, monkeypatch, tmp_path, eval_step, epochs, best_epoch):
    """Validation scores 0.1, 0.3, 0.2, 0.2, ... with stopping_step 2: the second
    validation is the best and the fifth ends the run (three without gain). Validated
    every epoch: 5 epochs, best epoch 1; every second epoch (1, 3, 5, ...): 10 and 3."""
    monkeypatch.chdir(trained.work)
    scores = iter([0.1, 0.3, 0.2, 0.2, 0.2, 0.2])
    monkeypatch.setattr(RecBoleTrainer, "_valid_epoch", lambda self, *a, **k: (s := next(scores), {"recall@5": s}))
    settings = {**trained.settings, "epochs": 40, "stopping_step": 2, "eval_step": eval_step,
                "checkpoint_dir": str(tmp_path / "scripted")}
    result = run("UMI", "tiny", config_dict=settings)
    assert (result["epochs"], result["best_epoch"], result["best_valid_score"]) == (epochs, best_epoch, 0.3)
    assert torch.load(best_file(tmp_path / "scripted"), weights_only=True)["epoch"] == best_epoch


def test_best_epoch_survives_a_resume_with_more_epochs(trained, monkeypatch, tmp_path):
    """RecBole validates every min(eval_step, epochs) epochs: 4 epochs with eval_step 10
    validate after epoch 3 (the best), the same run resumed to 8 epochs after epoch 7 (no
    gain). The best epoch stays 3."""
    monkeypatch.chdir(trained.work)
    scores = iter([0.3, 0.2])
    monkeypatch.setattr(RecBoleTrainer, "_valid_epoch", lambda self, *a, **k: (s := next(scores), {"recall@5": s}))
    settings = {**trained.settings, "epochs": 4, "eval_step": 10, "checkpoint_dir": str(tmp_path / "longer")}
    first = run("UMI", "tiny", config_dict=settings)
    assert (first["epochs"], first["best_epoch"]) == (4, 3)
    resumed = run(resume=str(last_checkpoint_path(best_file(tmp_path / "longer"))), config_dict={"epochs": 8})
    assert (resumed["epochs"], resumed["best_epoch"], resumed["best_valid_score"]) == (8, 3, 0.3)


def test_resume_before_the_first_validation(trained, monkeypatch, tmp_path):
    """With eval_step 3 a run killed in epoch 1 has a -last file but no best file yet."""
    monkeypatch.chdir(trained.work)
    train_epoch = RecBoleTrainer._train_epoch

    def killed_in_epoch_1(self, train_data, epoch_idx, *args, **kwargs):
        if epoch_idx == 1:
            raise _Killed
        return train_epoch(self, train_data, epoch_idx, *args, **kwargs)

    settings = {**trained.settings, "eval_step": 3, "checkpoint_dir": str(tmp_path / "early")}
    with monkeypatch.context() as patch:
        patch.setattr(RecBoleTrainer, "_train_epoch", killed_in_epoch_1)
        with pytest.raises(_Killed):
            run("UMI", "tiny", config_dict=settings)
    (last,) = (tmp_path / "early").glob("*-last.pth")
    assert torch.load(last, weights_only=True)["best_valid_result"] is None
    assert not list((tmp_path / "early").glob("UMI-*[0-9].pth"))  # no best file yet
    resumed = run(resume=str(last))
    assert resumed["best_valid_result"] and resumed["test_result"]


def test_resuming_a_run_of_other_code_says_so(trained, monkeypatch, tmp_path, caplog):
    """A checkpoint records the code that wrote it; resuming it with other code warns, naming
    both (the same code: no warning)."""
    monkeypatch.chdir(trained.work)
    for source in (trained.best, trained.last):
        shutil.copy(source, tmp_path / source.name)
    last = tmp_path / trained.last.name
    with caplog.at_level(logging.WARNING):
        run(resume=str(last), config_dict={"state": "WARNING"})  # the tiny runs log errors only
    assert "by other code" not in caplog.text
    other = {**code_version(), "code_digest": "0123456789abcdef"}
    monkeypatch.setattr(checkpoint_trainer, "code_version", lambda: other)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run(resume=str(last), config_dict={"state": "WARNING"})  # the tiny runs log errors only
    ours = code_version()["code_digest"]
    assert f"written after epoch {EPOCHS - 1} by other code (recbole-umi 0.1.0, code {ours}" in caplog.text
    assert "the epochs from here on run recbole-umi 0.1.0, code 0123456789abcdef" in caplog.text


def test_a_checkpoint_cannot_bring_back_settings_that_read_pickles(trained, tmp_path):
    crafted = torch.load(trained.best, weights_only=True)
    crafted["config"]["dataloaders_save_path"] = str(tmp_path / "evil.pkl")
    crafted["config"]["local_rank"] = 1
    assert "local_rank" not in checkpoint.rebuild_settings(crafted["config"])
    with pytest.raises(Exception, match="dataloaders_save_path"):
        Config("UMI", "tiny", config_dict=checkpoint.rebuild_settings(crafted["config"]))


def test_an_ml100k_checkpoint_reads_this_machines_packaged_copy(tmp_path):
    # RecBole's packaged ml-100k on the machine a checkpoint was trained on is an absolute path
    # that another machine or environment lacks: rebuilt, it is this RecBole's packaged copy
    from recbole_umi.checkpoints.content import plain_config, rebuild_settings

    here = Config("UMI", "ml-100k")
    saved = plain_config(here)
    saved["data_path"] = "/elsewhere/lib/python3.12/site-packages/recbole/dataset_example/ml-100k"
    rebuilt = rebuild_settings(saved)
    assert "data_path" not in rebuilt
    assert Config("UMI", "ml-100k", config_dict=rebuilt)["data_path"] == here["data_path"]
    # a copy of the user's own stays where it was
    saved["data_path"] = str(tmp_path / "ml-100k")
    assert rebuild_settings(saved)["data_path"] == str(tmp_path)


def test_recbole_finds_the_checkpoint_folder_made(tiny_data, monkeypatch):
    # RecBole's ensure_dir checks, then creates: two processes making the folder together can
    # both find it missing, and the second fails (FileExistsError, seen in a 2-process run in
    # CI). The trainer makes it first, so RecBole's check always finds it.
    import recbole.trainer.trainer as recbole_trainer

    found = []
    monkeypatch.setattr(recbole_trainer, "ensure_dir", lambda path: found.append(Path(path).is_dir()))
    config, _, _, model = build(tiny_data, "UMI", checkpoint_dir=str(tiny_data.parent / "new" / "saved"))
    get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    assert found == [True]


def test_other_interactions_under_the_same_ids_are_refused_on_resume_and_warned_on_load(tmp_path, monkeypatch):
    import logging

    from recbole_umi.checkpoint import CheckpointError, load
    from recbole_umi.quick_start import run
    from tests.conftest import random_sequences, tiny_config, write_atomic

    monkeypatch.chdir(tmp_path)
    sequences, profiles = random_sequences(n_users=40, n_items=30, length=10)
    data = write_atomic(tmp_path / "data", "tiny", sequences, profiles)
    settings = tiny_config(data, eval_protocol="user_split", epochs=2, checkpoint_dir=str(tmp_path / "saved"))
    run("UMI", "tiny", config_dict=settings)
    [last] = (tmp_path / "saved").glob("*-last.pth")
    [best] = [p for p in (tmp_path / "saved").glob("*.pth") if p != last]
    # the same users and items, one user's two first interactions in the other order
    path = data / "tiny" / "tiny.inter"
    header, first, second, *rest = path.read_text().splitlines()
    path.write_text("\n".join([header, first.rsplit("\t", 1)[0] + "\t1", second.rsplit("\t", 1)[0] + "\t0", *rest]) + "\n")
    with pytest.raises(CheckpointError, match="the interactions differ from those the model was trained on"):
        run("UMI", "tiny", config_dict={**settings, "epochs": 3}, resume=str(last))
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    root = logging.getLogger()
    level, _ = root.level, root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        load(best, config_dict={"state": "WARNING"})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert any("the interactions differ" in message for message in records)
