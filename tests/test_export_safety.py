"""Exports as safe as checkpoints, and requests checked: digests, the index against the
weights, exports moved into place whole, request values validated, requests in chunks."""

import json
import math
import shutil
from types import SimpleNamespace

import faiss
import numpy as np
import pytest

from recbole_umi import recommend as recommend_module
from recbole_umi.export import ExportError, export
from recbole_umi.recommend import RecommendError, Recommender, file_digest, meta_digest
from tests.test_export import train_and_export


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The models these tests serve, trained one epoch and exported (as test_export's)."""
    return train_and_export(tmp_path_factory, ["UMI", "MIND", "Popularity", "ComiRecSA"])


@pytest.fixture
def copy(exported, tmp_path):
    """A copy of UMI's export to tamper with."""
    work, _, _, checkpoints = exported
    folder = tmp_path / "UMI"
    shutil.copytree(work / "exports" / "UMI", folder)
    return folder, checkpoints


def flip_a_bit(path, position=0.5):
    data = bytearray(path.read_bytes())
    data[int(len(data) * position)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["items.faiss", "model.safetensors", "arrays.npz"])
def test_one_flipped_bit_in_a_file_is_refused_naming_it(copy, name):
    folder, _ = copy
    Recommender(folder)  # the copy serves as it is
    flip_a_bit(folder / name)
    with pytest.raises(RecommendError, match=rf"{name} does not match its digest in export.json"):
        Recommender(folder)


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("name, write", [
    ("items.faiss", flip_a_bit), ("model.safetensors", flip_a_bit), ("arrays.npz", flip_a_bit),
    # the index is parsed as it streams, before its second hash is complete: faiss fails first
    ("items.faiss", truncate), ("items.faiss", lambda path: flip_a_bit(path, 0)),  # its header's type
])
def test_a_file_written_in_place_after_its_digest_was_checked_is_refused(copy, name, write, monkeypatch):
    """The digests are checked on open files before anything is parsed; what is then loaded
    from them is hashed again, so a file written in place in between is refused, not served."""
    folder, _ = copy
    checked = recommend_module._handle_digest

    def written_in_place_after_the_check(handle):
        digest = checked(handle)
        if handle.name.endswith(name):
            write(folder / name)  # the same file (inode), the open handle reads the new bytes
        return digest

    monkeypatch.setattr(recommend_module, "_handle_digest", written_in_place_after_the_check)
    with pytest.raises(RecommendError, match=rf"{name} changed while it was loaded \(written in place"):
        Recommender(folder)


def test_export_json_changed_after_the_export_is_refused(copy):
    folder, _ = copy
    meta = json.loads((folder / "export.json").read_text())
    meta["item_tokens"] = meta["item_tokens"][:1] + meta["item_tokens"][2:] + meta["item_tokens"][1:2]  # rotated
    (folder / "export.json").write_text(json.dumps(meta))
    with pytest.raises(RecommendError, match="does not match its own digest"):
        Recommender(folder)
    meta["version"] = 1
    (folder / "export.json").write_text(json.dumps(meta))
    with pytest.raises(RecommendError, match="export of version 1.*export the checkpoint again"):
        Recommender(folder)


def test_a_re_export_while_the_files_are_read_serves_one_export_whole(copy, exported, tmp_path, monkeypatch):
    """Another export moved into the folder after export.json was read: the recommender
    reads everything again and serves the new export, never the old settings with the new
    weights (the files are opened between two equal reads of export.json)."""
    folder, _ = copy
    work = exported[0]
    mind = shutil.copytree(work / "exports" / "MIND", tmp_path / "MIND-next")
    swapped = []

    def re_exported_after_the_first_read(read):
        def reading(path, *args, **kwargs):
            data = read(path, *args, **kwargs)
            if path.name == "export.json" and not swapped:  # as folder_whole does: aside, then in
                folder.rename(tmp_path / "UMI-old")
                mind.rename(folder)
                swapped.append(path)
            return data
        return reading

    for method in ("read_bytes", "read_text"):
        monkeypatch.setattr(recommend_module.Path, method, re_exported_after_the_first_read(getattr(recommend_module.Path, method)))
    served = Recommender(folder)
    assert swapped and served.meta["model"] == "MIND" and type(served.model).__name__ == "MINDTower"
    monkeypatch.undo()
    assert served.recommend(users=["1"], n=3) == Recommender(work / "exports" / "MIND").recommend(users=["1"], n=3)


def test_a_reader_between_the_two_renames_of_a_re_export_gets_the_new_one(copy, exported, tmp_path, monkeypatch):
    """A re-export moves the old folder aside, then the new one in: a reader that comes in
    between finds nothing at the name, waits and reads the new export (was: 'not an
    export')."""
    folder, _ = copy
    mind = shutil.copytree(exported[0] / "exports" / "MIND", tmp_path / "MIND-next")
    folder.rename(tmp_path / "UMI-old")
    waits = []

    def moved_in_while_waiting(seconds):
        waits.append(seconds)
        if not folder.exists():
            mind.rename(folder)

    monkeypatch.setattr(recommend_module, "time", SimpleNamespace(sleep=moved_in_while_waiting))
    assert Recommender(folder).meta["model"] == "MIND" and len(waits) == 1


def test_an_export_missing_a_file_is_refused_naming_it(copy):
    folder, _ = copy
    (folder / "arrays.npz").unlink()
    with pytest.raises(RecommendError, match=r"has no arrays.npz: the export is incomplete"):
        Recommender(folder)


def test_an_index_of_other_items_is_refused_even_with_matching_digests(copy):
    folder, _ = copy
    other = faiss.IndexFlatL2(8)  # 20 items, L2, another size: a replaced index
    other.add(np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32))
    faiss.write_index(other, str(folder / "items.faiss"))
    meta = json.loads((folder / "export.json").read_text())
    meta["files"]["items.faiss"] = file_digest(folder / "items.faiss")  # a consistent rewrite
    meta["meta_digest"] = meta_digest(meta)
    (folder / "export.json").write_text(json.dumps(meta))
    with pytest.raises(RecommendError, match=r"holds 20 vectors of size 8, the model has 40 items of size 8"):
        Recommender(folder)


def test_weights_that_do_not_fit_the_settings_are_refused_naming_the_file(copy):
    folder, _ = copy
    meta = json.loads((folder / "export.json").read_text())
    meta["settings"]["n_interests"] = 5  # the weights were trained with 3 interests: other shapes
    meta["meta_digest"] = meta_digest(meta)  # a consistent rewrite
    (folder / "export.json").write_text(json.dumps(meta))
    with pytest.raises(RecommendError, match=r"model.safetensors does not fit a UMI built from export.json's settings"):
        Recommender(folder)


def test_a_failed_export_leaves_the_old_one_whole(copy, tmp_path):
    folder, checkpoints = copy
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    with pytest.raises(ExportError, match="director"):
        export(checkpoints["MIND"], folder, category_field="director")  # another model, a bad field
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["UMI"]  # no partial folder left
    export(checkpoints["MIND"], folder)  # a good one replaces it whole
    assert json.loads((folder / "export.json").read_text())["model"] == "MIND"
    Recommender(folder)


def test_an_export_to_a_file_is_refused_before_the_checkpoint_loads(copy, tmp_path, monkeypatch):
    _, checkpoints = copy
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr("recbole_umi.export.load", lambda *a, **k: pytest.fail("loaded before the check"))
    with pytest.raises(NotADirectoryError, match="notes.txt is a file, not a folder"):
        export(checkpoints["UMI"], tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_export_into_a_folder_of_other_files_is_refused_and_deletes_nothing(copy, tmp_path, monkeypatch):
    """An export replaces its folder whole: pointed at the checkpoints' own folder (or any
    folder of other files) it would have deleted them. Refused before the checkpoint loads;
    an empty folder or an earlier export is replaced."""
    _, checkpoints = copy
    mine = tmp_path / "saved"
    mine.mkdir()
    (mine / "UMI-best.pth").write_bytes(b"weights")
    (mine / "export.json").write_text("{}")  # an export's name among them changes nothing
    monkeypatch.setattr("recbole_umi.export.load", lambda *a, **k: pytest.fail("loaded before the check"))
    with pytest.raises(ExportError, match=r"saved holds files that are not an export's \(UMI-best.pth\)"):
        export(checkpoints["UMI"], mine)
    assert sorted(p.name for p in mine.iterdir()) == ["UMI-best.pth", "export.json"]
    monkeypatch.undo()
    empty = tmp_path / "empty"
    empty.mkdir()
    export(checkpoints["UMI"], empty)
    Recommender(empty)
    (empty / ".DS_Store").write_bytes(b"a desktop's")  # an earlier export a file browser has shown
    export(checkpoints["UMI"], empty)
    assert not (empty / ".DS_Store").exists()


def test_an_export_killed_while_replacing_the_old_one_is_recovered_by_the_next(copy):
    """A kill (no exception to clean up after) between moving the old export aside and the
    new one in leaves no export at the name: the next export puts the old one back before
    it starts, and clears the dead process's partial folder."""
    from recbole_umi.files import recover_interrupted

    folder, checkpoints = copy
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    folder.rename(folder.with_name(f".UMI.old-{dead}"))
    (folder.parent / f".UMI.partial-{dead}").mkdir()
    (folder.parent / f".UMI.partial-{dead}" / "model.safetensors").write_bytes(b"cut short")
    recover_interrupted(folder)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["UMI"]
    Recommender(folder)


@pytest.mark.parametrize("request_, message", [
    ({"diversity": math.inf}, "diversity = inf: must be a finite number >= 0"),
    ({"diversity": math.nan}, "diversity = nan"),
    ({"diversity": -0.5}, "diversity = -0.5"),
    ({"n": 0}, r"n = 0: must be an integer in \[1, 40\]"),
    ({"n": 5, "candidates": 3}, "candidates = 3: must be an integer of at least n"),
    ({"unknown_profile": "guess"}, "unknown_profile = 'guess'"),
])
def test_bad_request_values_are_refused(exported, request_, message):
    work, _, _, _ = exported
    with pytest.raises(RecommendError, match=message):
        Recommender(work / "exports" / "UMI").recommend(users=["1"], **request_)


def test_unknown_profile_values_are_refused_unless_mapped_on_purpose(exported):
    work, _, _, _ = exported
    recommender = Recommender(work / "exports" / "UMI")
    with pytest.raises(RecommendError, match=r"profile field 'gender' has no value 'female' \(known: 'F', 'M'\)"):
        recommender.recommend(histories=[["3", "9"]], profiles=[{"age": 30, "gender": "female"}])
    mapped = recommender.recommend(histories=[["3", "9"]], profiles=[{"age": 30, "gender": "female"}],
                                   unknown_profile="unknown")
    assert mapped == recommender.recommend(histories=[["3", "9"]], profiles=[{"age": 30, "gender": None}])
    with pytest.raises(RecommendError, match="fields the model does not read: occupation"):
        recommender.recommend(histories=[["3"]], profiles=[{"age": 30, "gender": "F", "occupation": "x"}])
    for age in ("old", math.inf, math.nan):
        with pytest.raises(RecommendError, match="profile field 'age' needs a"):
            recommender.recommend(histories=[["3"]], profiles=[{"age": age, "gender": "F"}])


def test_a_user_without_history_is_answered_from_the_profile_or_refused(exported):
    work, _, _, _ = exported
    umi = Recommender(work / "exports" / "UMI").recommend(histories=[[]], profiles=[{"age": 30, "gender": "F"}])
    assert len(umi[0]) == 10
    assert len(Recommender(work / "exports" / "Popularity").recommend(histories=[[]], profiles=[{}])[0]) == 10
    with pytest.raises(RecommendError, match="reads only the history: a user without one gives it nothing"):
        Recommender(work / "exports" / "ComiRecSA").recommend(histories=[[]], profiles=[{}])


def test_requests_are_answered_in_chunks_as_a_whole(exported, monkeypatch):
    work, _, _, _ = exported
    recommender = Recommender(work / "exports" / "MIND")
    users = [str(u) for u in range(1, 61)] * 3
    whole = recommender.recommend(users=users, n=5, diversity=0.3)
    monkeypatch.setattr(recommend_module, "CHUNK_USERS", 7)
    chunked = recommender.recommend(users=users, n=5, diversity=0.3)
    # the same items in the same order; the scores to float rounding (at more than one thread
    # a product over 7 users may sum in another order than over 180)
    assert [[item for item, _ in row] for row in chunked] == [[item for item, _ in row] for row in whole]
    assert [score for row in chunked for _, score in row] == pytest.approx(
        [score for row in whole for _, score in row], rel=1e-5, abs=1e-6)
