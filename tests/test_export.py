"""Export and serve: a trained model's export answers, in a fresh process that unpickles
nothing, with the top N that the trained model itself gives."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_umi.checkpoint import load
from recbole_umi.export import ExportError, export
from recbole_umi.quick_start import run
from recbole_umi.recommend import RecommendError, Recommender
from recbole_umi.registry import PLUGIN_MODELS
from tests.conftest import REPO_ROOT, random_sequences, tiny_config, write_atomic

MODELS = sorted(PLUGIN_MODELS)
N = 5
T = 5  # MAX_ITEM_LIST_LENGTH of tiny_config
GENRES = ["Action", "Comedy", "Drama"]

# The fresh process: argv = repo root, exports folder, output file, models. pickle and
# torch.load are made to fail first: serving must not need them.
CHILD = """
import json, pickle, sys
import torch
def refuse(*args, **kwargs):
    raise AssertionError("serving unpickled something")
pickle.load = pickle.loads = torch.load = refuse
sys.path.insert(0, sys.argv[1])
from recbole_umi.recommend import Recommender
requests = json.loads(sys.argv[3])
answers = {}
for model in sys.argv[4:]:
    recommender = Recommender(f"{sys.argv[2]}/{model}")
    answers[model] = {
        "users": recommender.recommend(users=requests["users"], n=5),
        "raw": recommender.recommend(histories=requests["histories"], profiles=requests["profiles"], n=5),
        "title": recommender.title(recommender.recommend(users=requests["users"][:1], n=1)[0][0][0]),
        "module": __import__("recbole_umi").__file__,
    }
print(json.dumps(answers))
"""


def train_and_export(tmp_path_factory, models):
    """``models`` trained one epoch on a tiny dataset with an item file, and exported."""
    work = tmp_path_factory.mktemp("export")
    sequences, profiles = random_sequences(n_users=60, n_items=40, length=12, seed=3)
    data = write_atomic(work / "data", "tiny", sequences, profiles)
    rows = ["item_id:token\tmovie_title:token_seq\tgenre:token_seq"]
    rows += [f"{i}\tFilm number {i}\t{GENRES[i % 3]}" + (" Drama" if i % 5 == 0 else "") for i in range(1, 41)]
    (data / "tiny" / "tiny.item").write_text("\n".join(rows) + "\n")
    checkpoints = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        for model in models:
            settings = tiny_config(data, epochs=1, eval_protocol="user_split", checkpoint_dir=str(work / "saved" / model),
                                   load_col={"inter": ["user_id", "item_id", "timestamp"], "user": ["user_id", "age", "gender"]})
            run(model, "tiny", config_dict=settings)
            checkpoints[model] = next(p for p in (work / "saved" / model).glob("*.pth") if not p.stem.endswith("-last"))
            export(checkpoints[model], work / "exports" / model, category_field="genre")
    return work, sequences, profiles, checkpoints


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every plugin model trained one epoch on a tiny dataset with an item file, and exported."""
    return train_and_export(tmp_path_factory, MODELS)


def expected_top(checkpoint, histories, profiles, exclude=True):
    """The trained model's own top N: its interests for the raw histories and profiles,
    every item scored (max over interests), history and padding items left out."""
    loaded = load(checkpoint)
    dataset, model = loaded.dataset, loaded.model
    tokens = list(dataset.field2id_token["item_id"])
    sequences = torch.zeros(len(histories), T, dtype=torch.long)
    lengths = torch.zeros(len(histories), dtype=torch.long)
    for row, history in enumerate(histories):
        ids = [tokens.index(str(item)) for item in history][-T:]
        sequences[row, : len(ids)] = torch.tensor(ids)
        lengths[row] = len(ids)
    fields = {model.ITEM_SEQ: sequences, model.ITEM_SEQ_LEN: lengths,
              "age": torch.tensor([float(p[0]) for p in profiles]),
              "gender": torch.tensor([list(dataset.field2id_token["gender"]).index(p[1]) for p in profiles])}
    from recbole.data.interaction import Interaction

    with torch.no_grad():
        interests = model(Interaction(fields))
        scores = torch.einsum("bkd,nd->bkn", interests, model.item_embeddings()).max(dim=1).values
    scores[:, 0] = -torch.inf
    for row, history in enumerate(histories):
        if exclude:
            scores[row, [tokens.index(str(item)) for item in history]] = -torch.inf
    top = scores.topk(N, dim=1)
    return [[(tokens[i], float(s)) for s, i in zip(row_s, row_i)] for row_s, row_i in zip(top.values, top.indices)]


def assert_same_lists(got, expected):
    assert [[token for token, _ in row] for row in got] == [[token for token, _ in row] for row in expected]
    np.testing.assert_allclose([[s for _, s in row] for row in got], [[s for _, s in row] for row in expected], rtol=1e-5, atol=1e-5)


def test_fresh_process_serves_what_the_trained_model_ranks(exported):
    work, sequences, profiles, checkpoints = exported
    users = [1, 7, 42]
    new_history, new_profile = [3, 9, 27, 14], (33.0, "F")
    requests = {"users": [str(u) for u in users], "histories": [[str(i) for i in new_history]],
                "profiles": [{"age": new_profile[0], "gender": new_profile[1]}]}
    out = subprocess.run([sys.executable, "-c", CHILD, str(REPO_ROOT), str(work / "exports"), json.dumps(requests), *MODELS],
                         capture_output=True, text=True, cwd=work, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    answers = json.loads(out.stdout.splitlines()[-1])
    for model in MODELS:
        answer = answers[model]
        assert Path(answer["module"]).resolve().is_relative_to(REPO_ROOT)
        # a known user: the whole stored history and the stored profile
        expected = expected_top(checkpoints[model], [sequences[u] for u in users], [profiles[u] for u in users])
        assert_same_lists(answer["users"], expected)
        # a new user from raw item ids and profile values
        assert_same_lists(answer["raw"], expected_top(checkpoints[model], [new_history], [new_profile]))
        assert answer["title"].startswith("Film number ")


def test_history_kept_on_request_and_diversity(exported):
    work, sequences, profiles, checkpoints = exported
    recommender = Recommender(work / "exports" / "UMI")
    kept = recommender.recommend(users=["1"], n=N, exclude_history=False)
    assert_same_lists(kept, expected_top(checkpoints["UMI"], [sequences[1]], [profiles[1]], exclude=False))
    # diversity: the greedy re-ranking of the top 5 N over the exported genres
    plain = recommender.recommend(users=["1"], n=N)[0]
    diverse = recommender.recommend(users=["1"], n=N, diversity=10.0)[0]
    genres = {token: recommender.arrays["categories"][recommender.item_ids[token]] for token, _ in plain + diverse}
    n_genres = [int(np.any([genres[t] for t, _ in lst], axis=0).sum()) for lst in (plain, diverse)]
    assert n_genres[1] == 3 >= n_genres[0]  # a large lambda covers every genre
    assert diverse[0] == plain[0]  # the best item is picked first


def test_bad_requests(exported):
    work, _, _, _ = exported
    recommender = Recommender(work / "exports" / "MIND")
    with pytest.raises(RecommendError, match="user '999' is not in the export"):
        recommender.recommend(users=["999"])
    with pytest.raises(RecommendError, match="items the model does not know: 77"):
        recommender.recommend(histories=[["3", "77"]], profiles=[{"age": 30, "gender": "M"}])
    with pytest.raises(RecommendError, match="profile lacks gender"):
        recommender.recommend(histories=[["3"]], profiles=[{"age": 30}])
    with pytest.raises(RecommendError, match="needs a number"):
        recommender.recommend(histories=[["3"]], profiles=[{"age": None, "gender": "M"}])
    with pytest.raises(RecommendError, match="either users or histories"):
        recommender.recommend()
    with pytest.raises(RecommendError, match="not an export"):
        Recommender(work)


def test_ivf_export_and_refusals(exported, monkeypatch):
    work, _, _, checkpoints = exported
    monkeypatch.chdir(work)
    out = export(checkpoints["YoutubeDNN"], work / "ivf", cmd_args=["--retrieval=faiss_ivf", "--retrieval_nprobe=3"])
    meta = json.loads((out / "export.json").read_text())
    # 40 items: auto_nlist gives one cell (39 training points a cell), so nprobe is 1 too
    assert meta["index"] == {"kind": "ivf", "nlist": 1, "nprobe": 1}
    assert (meta["index_settings"]["nlist"], meta["index_settings"]["nprobe"]) == (0, 3)
    assert len(Recommender(out).recommend(users=["2"], n=3)[0]) <= 3
    with pytest.raises(ExportError, match="no such column"):
        export(checkpoints["UMI"], work / "bad", category_field="director")
    with pytest.raises(RecommendError, match="diversity needs categories"):
        Recommender(out).recommend(users=["2"], diversity=1.0)


@pytest.mark.parametrize("protocol", ["recbole", "user_split"])
def test_exported_histories_are_the_whole_sequences(exported, protocol, monkeypatch):
    # under RecBole's protocol the dataset holds augmented rows: the first items come back
    work, sequences, _, checkpoints = exported
    monkeypatch.chdir(work)
    data = checkpoints["UMI"].parent.parent.parent / "data"
    settings = tiny_config(data, epochs=1, eval_protocol=protocol, checkpoint_dir=str(work / protocol))
    run("YoutubeDNN", "tiny", config_dict=settings)
    checkpoint = next(p for p in (work / protocol).glob("*.pth") if not p.stem.endswith("-last"))
    out = export(checkpoint, work / f"histories-{protocol}")
    recommender = Recommender(out)
    for user in (1, 30, 60):
        history = recommender._known_user_history(str(user))
        assert [recommender.item_tokens[i] for i in history] == [str(i) for i in sequences[user]]


@pytest.mark.parametrize("item_field, length", [("movie_id", 5), ("item_id", 1)])
def test_recboles_augmented_rows_give_back_each_users_whole_history(tmp_path, monkeypatch, item_field, length):
    """Under RecBole's protocol the first item of each user comes from its first row's
    history list, whose name RecBole takes from the item field (``movie_id_list``: it was
    looked up as ``item_id_list`` and the first items silently dropped), and whose first row
    is found as each user's first, not by a history of length 1 (which at T = 1 every row
    has: items came back twice). A user with one interaction has no augmented row: its item
    comes back too (it was missing)."""
    from recbole_umi.config import Config
    from recbole_umi.data import create_dataset, data_preparation
    from recbole_umi.export import _interactions

    monkeypatch.chdir(tmp_path)
    sequences = {1: [5, 6, 7, 8], 2: [9, 10, 11], 3: [5, 9, 12, 6], 4: [7]}
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    lines = [f"user_id:token\t{item_field}:token\ttimestamp:float"]
    lines += [f"{user}\t{item}\t{position}" for user, items in sequences.items() for position, item in enumerate(items)]
    (folder / "tiny.inter").write_text("\n".join(lines) + "\n")
    config = Config("YoutubeDNN", "tiny", config_dict=tiny_config(
        tmp_path / "data", eval_protocol="recbole", ITEM_ID_FIELD=item_field, MAX_ITEM_LIST_LENGTH=length,
        load_col={"inter": ["user_id", item_field, "timestamp"]}, profile_fields=[], topk=[2], metrics=["Recall"],
        valid_metric="Recall@2"))
    dataset = create_dataset(config)
    data_preparation(config, dataset)
    users, items = _interactions(dataset)
    user_tokens, item_tokens = dataset.field2id_token["user_id"], dataset.field2id_token[item_field]
    found = {int(user_tokens[u]): [int(item_tokens[i]) for i in items[users == u]] for u in np.unique(users)}
    assert found == sequences


def test_command_line_prints_titles(exported, capsys):
    from recbole_umi.recommend import main

    work, _, _, _ = exported
    result = main([str(work / "exports" / "UMI"), "--user=1", "--n=3"])
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["rank", "item", "score", "title"]
    assert len(lines) == len(result) == 3
    assert lines[0].split()[:2] == ["1", result[0][0]] and "Film number" in lines[0]
    main([str(work / "exports" / "UMI"), "--history=3,9", "--profile=age=30,gender=F", "--n=2"])
    assert len(capsys.readouterr().out.splitlines()) == 1 + 2


def test_serving_imports_no_recbole(exported):
    """An export is served in a fresh process that never imports RecBole: the towers are
    built from the export's settings and data schema (no RecBole dataset, config or model)."""
    work, _, _, _ = exported
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from recbole_umi.recommend import Recommender\n"
        f"lists = {{m: Recommender({str(work / 'exports')!r} + '/' + m).recommend(users=['1'], n=3) for m in sys.argv[1:]}}\n"
        "print(json.dumps({'recbole': sorted(n for n in sys.modules if n.split('.')[0] == 'recbole'), 'lists': lists}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *MODELS], capture_output=True, text=True, cwd=work, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout.splitlines()[-1])
    assert answer["recbole"] == []
    assert all(len(answer["lists"][model][0]) == 3 for model in MODELS)
