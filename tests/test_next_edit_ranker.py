"""The edit ranker: candidates generalised from the history, its training, the shipped ranker, bad files."""

from __future__ import annotations

import json
import re

import pytest

from models.next_edit.candidates import FEATURE_NAMES, edit_key, featurize, generate
from models.next_edit.examples import Edit, Example, apply_all, apply_edit, write_jsonl
from models.next_edit.ranker import RANKER_FILE, RankerError, load_ranker

SHAPES = "def area(width, height):\n    check(width)\n    return width * height\n"


def _afters(history, current, original=None):
    return {apply_edit(current, c.edit): c for c in generate(history, current, original)}


def test_a_rename_gives_the_next_use_and_never_the_undo():
    history = [Edit(0, 1, "def area(width, height):\n", "def area(w, height):\n")]
    current = apply_all(SHAPES, history)
    afters = _afters(history, current)
    want = current.replace("    check(width)", "    check(w)")
    assert want in afters and afters[want].generator == "substitute_all" and afters[want].age == 0
    assert SHAPES not in afters  # undoing the rename is never a candidate
    assert current not in afters  # nor changing nothing


def test_text_added_before_the_same_characters_is_offered_on_a_sibling_line():
    original = "def f():\n    import os\n    import sys\n    return os, sys\n"
    history = [Edit(1, 2, "    import os\n", "    import os  # noqa: PLC0415\n")]
    current = apply_all(original, history)
    afters = _afters(history, current, original)
    want = current.replace("    import sys\n", "    import sys  # noqa: PLC0415\n")
    assert want in afters and afters[want].generator == "context"


def test_inserted_lines_are_offered_next_to_an_equal_neighbour_with_or_without_the_original_text():
    original = "def a():\n    run()\n\n\ndef b():\n    run()\n"
    history = [Edit(1, 1, "", "    log()\n")]
    current = apply_all(original, history)
    want = current.replace("def b():\n    run()\n", "def b():\n    log()\n    run()\n")
    assert want in _afters(history, current, original)
    assert want in _afters(history, current)  # the server has no original text: the history is undone instead
    assert set(_afters(history, current)) == set(_afters(history, current, original))


def test_a_repeated_deletion_and_edit_keys():
    original = "x = 1\nprint(x)  # debug\ny = 2\nprint(y)  # debug\n"
    history = [Edit(1, 2, "print(x)  # debug\n", "")]
    current = apply_all(original, history)
    afters = _afters(history, current, original)
    assert "x = 1\ny = 2\n" not in afters  # the other line differs: no whole-line repeat
    twice = "x = 1\nprint(x)  # debug\ny = 2\nprint(x)  # debug\n"
    current = apply_all(twice, history)
    again = _afters(history, current, twice)
    assert "x = 1\ny = 2\n" in again and again["x = 1\ny = 2\n"].ways == 2  # the block repeat and the deletion
    same = "a\nb\na\n"
    assert edit_key(Edit(0, 2, "a\nb\n", "a\nc\n")) == edit_key(Edit(1, 2, "b\n", "c\n"))
    assert apply_edit(same, Edit(0, 2, "a\nb\n", "a\nc\n")) == apply_edit(same, Edit(1, 2, "b\n", "c\n"))


def test_features_have_their_names_and_the_baseline_choice_is_marked():
    history = [Edit(0, 1, "def area(width, height):\n", "def area(w, height):\n")]
    current = apply_all(SHAPES, history)
    baseline = Edit(1, 2, "    check(width)\n", "    check(w)\n")
    found = featurize(generate(history, current), history, current, 0, baseline)
    assert found and all(len(c.features) == len(FEATURE_NAMES) for c in found)
    marked = [c for c in found if c.features[FEATURE_NAMES.index("is_baseline")] == 1.0]
    assert [c.edit.start_line for c in marked] == [1]


def _rename_chain(name: str, package: str, split: str, uses: int = 3) -> Example:
    """A function with a parameter renamed at the def and at its first use; the target: the next use."""
    body = "".join(f"    total += {name} * {i}\n" for i in range(uses))
    original = f"def f({name}, other):\n    total = 0\n{body}    return total\n"
    new = name[0]
    history = [Edit(0, 1, f"def f({name}, other):\n", f"def f({new}, other):\n"),
               Edit(2, 3, f"    total += {name} * 0\n", f"    total += {new} * 0\n")]
    current = apply_all(original, history)
    target = Edit(3, 4, f"    total += {name} * 1\n", f"    total += {new} * 1\n")
    return Example(f"{package}/m.py", package, original, history, current, target, "synthetic:rename", split)


def test_a_ranker_trained_on_rename_chains_predicts_the_next_use(tmp_path):
    from models.next_edit.train_ranker import train_ranker

    names = ["width", "height", "count", "value", "index", "offset", "length", "weight", "margin", "radius",
             "amount", "factor", "buffer", "cursor", "handle", "source", "target", "window"]
    train = [_rename_chain(n, f"pkg{i % 6}", "train", uses=3 + i % 4) for i, n in enumerate(names)]
    write_jsonl(tmp_path / "real_train.jsonl", train)
    ranker = train_ranker(tmp_path, tmp_path / "ranker", synthetic_sample=None, log=lambda m: None)
    loaded = load_ranker(tmp_path / "ranker")
    assert loaded.version == ranker.version and loaded.threshold == ranker.threshold
    held_out = _rename_chain("scale", "other", "heldout", uses=5)
    edit, score = loaded.predict_scored(held_out)
    assert edit is not None and apply_edit(held_out.current, edit) == apply_edit(held_out.current, held_out.target)
    assert 0.0 < score <= 1.0
    assert loaded.info["data"]["real_examples"] == len(train)


def test_the_shipped_ranker_loads_and_continues_a_rename():
    ranker = load_ranker()
    history = [Edit(0, 1, "def area(width, height):\n", "def area(w, height):\n")]
    current = apply_all(SHAPES, history)
    from models.next_edit.model import predict_with

    found = predict_with("ranker", None, history, current, 0, ranker=ranker)  # as the server asks
    assert found is not None and found.predictor == "ranker" and found.shown and found.threshold == ranker.threshold
    assert apply_edit(current, found.edit) == current.replace("    check(width)", "    check(w)")
    assert ranker.rank([], current, 0) is None


@pytest.mark.parametrize("content, says", [
    (None, "no edit ranker"),
    ("{not json", "not a valid edit ranker"),
    (json.dumps({"format": 99}), "format 99"),
    (json.dumps({"format": 1, "feature_names": ["x"], "threshold": 0.1, "trees": {}}), "features differ"),
    (b"\xff\xfe\x00binary", "not a valid edit ranker"),
])
def test_a_missing_or_corrupt_ranker_is_refused_naming_the_path(tmp_path, content, says):
    if content is not None:
        path = tmp_path / RANKER_FILE
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(RankerError) as err:
        load_ranker(tmp_path)
    assert says in str(err.value) and str(tmp_path) in str(err.value)


def test_a_long_file_is_searched_only_near_the_cursor():
    from models.next_edit.candidates import SEARCH_LINES

    filler = "pass\n" * (SEARCH_LINES + 10)
    original = "def f(width):\n    return width\n" + filler + "check(width)\n"
    history = [Edit(0, 1, "def f(width):\n", "def f(w):\n")]
    current = apply_all(original, history)
    near = {c.edit.start_line for c in generate(history, current, original, cursor_line=0)}
    everywhere = {c.edit.start_line for c in generate(history, current, original)}
    far = len(current.splitlines()) - 1
    assert 1 in near and far not in near  # the use past the search window is left alone
    assert {1, far} <= everywhere


def test_inserted_lines_are_not_offered_again_right_beside_themselves():
    original = "def area(width, height):\n    check(width)\n    return width * height\n"
    history = [Edit(2, 2, "", "    log(height)\n")]
    current = apply_all(original, history)
    stutter = current.replace("    log(height)\n", "    log(height)\n    log(height)\n")
    assert stutter not in _afters(history, current, original)


def test_the_commands_say_what_is_wrong_instead_of_failing(tmp_path, capsys):
    from lsp_server.cli import main

    assert main(["train", "next-edit-ranker", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == 2
    assert "tact train next-edit-data" in capsys.readouterr().err
    write_jsonl(tmp_path / "data" / "x_heldout.jsonl", [_rename_chain("width", "p", "heldout")])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / RANKER_FILE).write_text("{bad")
    for ranker, says in ((tmp_path / "missing", "no edit ranker"), (tmp_path / "bad", "not a valid edit ranker")):
        code = main(["eval", "next-edit", "--data", str(tmp_path / "data"), "--ranker", str(ranker), "--no-model"])
        assert code == 2 and says in capsys.readouterr().err
    assert main(["eval", "next-edit", "--data", str(tmp_path / "data"), "--no-model", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["ranker"].startswith("ranker-") and figures["sets"]["x_heldout"]["ranker"]["examples"] == 1


def test_enclosing_scopes_follow_indentation_and_a_header_holds_itself():
    from models.next_edit.candidates import enclosing_scopes

    src = ("import os\n\nclass A:\n    def f(self, x):\n        y = x\n\n        # note\n        return y\n\n"
           "    def g(self):\n        pass\n\ndef h():\n    return 1\n")
    inner, top = enclosing_scopes(src.splitlines(keepends=True))
    assert inner[3:8] == [3, 3, 3, 3, 3]  # f's header, body, blank line and comment: all in f
    assert inner[9:11] == [9, 9] and inner[2] == 2 and inner[0] == -1
    assert inner[12:14] == [12, 12]
    assert top[:2] == [0, 0] and set(top[2:12]) == {2} and top[12:14] == [12, 12]


def _random_history(rng, text: str, steps: int) -> tuple[list[Edit], str]:
    """Random line edits (replace, insert, delete, change a word) applied one after another."""
    from models.next_edit.examples import lines_of

    history = []
    for _ in range(steps):
        lines = lines_of(text)
        start = rng.randrange(0, len(lines) + 1)
        end = min(len(lines), start + rng.choice((0, 1, 1, 2)))
        original = "".join(lines[start:end])
        kind = rng.random()
        words = re.findall(r"\w+|[^\w\s]", original)
        if kind < 0.6 and words:
            updated = original.replace(rng.choice(words), rng.choice(["w2", "self.x", "", "(", "é", "x: int"]),
                                       rng.choice((1, -1)))
        elif kind < 0.5:
            updated = ""
        else:
            updated = "".join(rng.choice(["    pass\n", "x = 1\n", "\n", "\tif a:\n", "y(w)  # noqa\n", "z = 'é'"])
                              for _ in range(rng.randrange(1, 3)))
        edit = Edit(start, end, original, updated)
        try:
            text = apply_edit(text, edit)
        except ValueError:
            continue
        history.append(edit)
    return history, text


@pytest.mark.parametrize("seed", range(4))
def test_random_histories_give_candidates_that_apply_and_never_undo(seed):
    import random

    from models.next_edit.ranker import load_ranker

    rng = random.Random(seed)
    ranker = load_ranker()
    base = SHAPES + "def use(w):\n    return area(w, w)  # noqa\n\n\nx = 1\nprint(x)\n"
    candidates = ranked = 0
    for _ in range(60):
        original = base if rng.random() < 0.8 else base.rstrip("\n")  # with and without a final newline
        history, current = _random_history(rng, original, rng.randrange(1, 6))
        if not history:
            continue
        for with_original in (original, None):
            for c in generate(history, current, with_original, rng.randrange(0, 20)):
                candidates += 1
                after = apply_edit(current, c.edit)  # raises if the candidate does not fit the text
                assert after != current
                assert not (c.edit.original == history[-1].updated and c.edit.updated == history[-1].original)
        found = ranker.rank(history, current, rng.randrange(0, 20))
        if found is not None:
            ranked += 1
            assert 0.0 <= found.score <= 1.0
    assert candidates >= 100 and ranked >= 20, (candidates, ranked)  # the checks above ran (164-222 and 35-39 seen)


def test_a_telemetry_database_becomes_examples_in_the_order_the_edits_were_made(tmp_path, capsys):
    """A rename made by hand in a logged session: each edit after the first that does not just continue the
    one before is a target, with the earlier edits as its history; the database goes on to train a ranker."""
    from lsp_server.cli import main
    from models.next_edit.examples import read_jsonl
    from models.next_edit.telemetry_examples import from_telemetry

    db = tmp_path / "t.sqlite3"
    # width -> w at the def, then at its two uses below (from the bottom up), then a line typed on
    _log_shapes_session(db, [(0, 9, 0, 14, "width", "w"), (2, 11, 2, 16, "width", "w"), (1, 10, 1, 15, "width", "w"),
                             (1, 12, 1, 12, "", "  # checked")])
    found = from_telemetry([db, tmp_path / "missing.sqlite3"])
    assert len(found.refusals) == 1 and "missing.sqlite3" in found.refusals[0]
    # targets: the second and third renames (the typing on line 1 continues the third edit's line)
    assert [len(ex.history) for ex in found.examples] == [1, 2]
    first = found.examples[0]
    assert first.package == "s1" and first.source == "telemetry" and first.cursor_line == 0
    assert first.target == Edit(2, 3, "    return width * height\n", "    return w * height\n")
    assert apply_edit(first.current, first.target) == apply_all(first.original, [*first.history, first.target])
    assert found.examples[1].target == Edit(1, 2, "    check(width)\n", "    check(w)\n")
    # the command writes them next to the release and synthetic examples
    assert main(["train", "next-edit-data", "--telemetry", str(db), "--out", str(tmp_path / "data")]) == 0
    assert "2 examples" in capsys.readouterr().out
    rows = list(read_jsonl(tmp_path / "data" / "telemetry_train.jsonl"))
    assert [r.target for r in rows] == [ex.target for ex in found.examples]
    # ... and the ranker trains on them as real changes
    from models.next_edit.train_ranker import train_ranker

    names = ["height", "count", "value", "index", "offset", "length", "weight", "margin", "radius", "amount"]
    write_jsonl(tmp_path / "data" / "real_train.jsonl",
                [_rename_chain(n, f"pkg{i % 5}", "train", uses=3 + i % 3) for i, n in enumerate(names)])
    ranker = train_ranker(tmp_path / "data", tmp_path / "ranker", synthetic_sample=None, log=lambda m: None)
    assert ranker.info["data"]["telemetry_examples"] == 2 and ranker.info["data"]["real_examples"] == 12


def test_an_edit_that_does_not_fit_ends_its_documents_stream_but_keeps_the_examples_before_it(tmp_path):
    from models.next_edit.telemetry_examples import from_telemetry

    db = tmp_path / "t.sqlite3"
    renames = [(0, 9, 0, 14, "width", "w"), (2, 11, 2, 16, "width", "w")]
    _log_shapes_session(db, [*renames, (40, 0, 40, 5, "width", "w"), (1, 10, 1, 15, "width", "w")])  # no line 40
    _log_shapes_session(db, renames, start=106.0, new_session=False)  # opened again: its text is known again and its edits count
    found = from_telemetry([db])
    assert [ex.target for ex in found.examples] == [Edit(2, 3, "    return width * height\n", "    return w * height\n")] * 2
    assert sum(found.skipped.values()) == 2  # the edit that did not fit, and the one after it
    assert any("did not fit" in why for why in found.skipped)


def test_enclosing_scopes_of_a_window_equal_those_of_the_whole_file():
    """A request reads only its window's scopes; they must be the ones the whole file gives."""
    import random
    from pathlib import Path

    from models.next_edit.candidates import enclosing_scopes

    lines = Path(__file__).with_name("test_next_edit_ranker.py").read_text().splitlines(keepends=True)
    lines += ["class Tail:\n", "    def m(self):\n", "        # only indented lines below\n", "        return 1\n"]
    inner, top = enclosing_scopes(lines)
    rng = random.Random(7)
    for _ in range(200):
        first = rng.randrange(len(lines))
        end = rng.randrange(first, len(lines) + 3)
        w_inner, w_top = enclosing_scopes(lines, first, end)
        assert w_inner == inner[first:end] and w_top == top[first:end], (first, end)
    assert enclosing_scopes(lines, len(lines), len(lines) + 1) == ([], [])
    assert enclosing_scopes([], 0, 1) == ([], [])


def _log_shapes_session(db, edits: list[tuple], start: float = 100.0, new_session: bool = True) -> None:
    """Session s1 (started here unless ``new_session`` is false) opens SHAPES, makes ``edits`` ((start line,
    char, end line, char, removed, inserted)) one second apart, and closes it."""
    from telemetry import DocumentClosed, DocumentOpened, EditEvent, SessionStarted, TelemetryStore

    uri = "file:///shapes.py"
    with TelemetryStore(db) as store:
        if new_session:
            store.record(SessionStarted("s1", "c", "1", "0.1.0", {}, {}, ts=start))
        store.record(DocumentOpened("s1", uri, 1, "python", SHAPES, ts=start))
        for k, (sl, sc, el, ec, removed, inserted) in enumerate(edits, 1):
            store.record(EditEvent("s1", uri, k + 1, sl, sc, el, ec, removed, inserted, start + k, 1, ts=start + k + 0.5))
        store.record(DocumentClosed("s1", uri, ts=start + len(edits) + 1))


def test_the_ranker_also_learns_the_release_changes_replayed_bottom_to_top(tmp_path):
    """Top to bottom alone, every training target lay below the edits before it, and the ranker learned the order."""
    from models.next_edit.real_changes import PACKAGE_PAIRS, bottom_up_examples, heldout_split
    from models.next_edit.train_ranker import train_ranker

    names = ["width", "height", "count", "value", "index", "offset", "length", "weight", "margin", "radius"]
    write_jsonl(tmp_path / "real_train.jsonl",
                [_rename_chain(n, f"pkg{i % 5}", "train", uses=3 + i % 3) for i, n in enumerate(names)])
    name, v1, v2 = next(p for p in PACKAGE_PAIRS if heldout_split(p[0]) == "train")  # a release pair of the train side
    before = "".join(f"def f{i}(size):\n    return size * {i}\n\n\n" for i in range(5))
    for version, text in ((v1, before), (v2, before.replace("size", "n"))):
        (tmp_path / "src" / f"{name}-{version}" / "pkg").mkdir(parents=True)
        (tmp_path / "src" / f"{name}-{version}" / "pkg" / "m.py").write_text(text)
    replayed = list(bottom_up_examples(tmp_path, "train"))
    assert len(replayed) == 4 and all(ex.target.start_line < ex.history[-1].start_line for ex in replayed)
    ranker = train_ranker(tmp_path, tmp_path / "ranker", synthetic_sample=None, log=lambda m: None)
    assert ranker.info["data"]["real_examples"] == len(names) + len(replayed)


def test_a_release_package_and_the_corpus_copy_of_it_share_a_fold():
    """Out-of-fold scores of attrs's release changes come from trees that never saw the corpus's attrs code."""
    from models.corpus import package_bucket
    from models.next_edit.real_changes import PACKAGE_PAIRS
    from models.next_edit.train_ranker import FOLDS, fold_of

    for real, corpus in [("attrs", "site:attr"), ("python-dateutil", "site:dateutil"), ("cattrs", "site:cattr"),
                         ("httpcore", "site:httpcore2"), ("platformdirs", "site:platformdirs")]:
        assert fold_of(real) == fold_of(corpus), (real, corpus)
    assert all(fold_of(name) == package_bucket(name, FOLDS) for name, _, _ in PACKAGE_PAIRS)  # real folds unmoved


class _CountingTokens:
    """Stands in for the token pattern and counts the characters tokenised."""

    def __init__(self, pattern: re.Pattern) -> None:
        self.pattern, self.chars = pattern, 0

    def findall(self, s: str) -> list[str]:
        self.chars += len(s)
        return self.pattern.findall(s)


def test_a_long_edited_line_is_tokenised_once_not_once_per_candidate(monkeypatch):
    """Every candidate's line was compared with its history edit's line by tokenising both again: a rename made in
    the comment of a 130 kB data line, with 200 uses of the name below, took 13 s a request on the inference thread."""
    from models.next_edit import candidates

    table = "DATA = [" + ", ".join(f"'{i:x}'" for i in range(4000)) + "]  # width\n"
    text = table + "".join(f"def f{i}(width):\n    return width + {i}\n" for i in range(200))
    history = [Edit(0, 1, table, table.replace("# width", "# w"))]
    current = apply_all(text, history)
    counting = _CountingTokens(candidates._TOKEN)
    monkeypatch.setattr(candidates, "_TOKEN", counting)
    ranked = candidates.featurized(history, current, 0)
    assert len(ranked) >= 200  # every use of `width` is a candidate, each compared with the long line
    assert counting.chars <= 2 * len(current)  # each line read about once, not once per candidate
