"""Seeded random notebook sessions against the real server over stdio, sent as VS Code's language client sends them
(vscode-languageclient's notebook.js): one or two notebooks typed in anywhere, cells added, deleted and moved, a cell
switched to another language and back (its document closed and reopened through the notebook's structure), completions
in random cells, notebooks closed and reopened, and a file typed in beside them. Every request is answered; the
server's view, as telemetry logs it at each step (each notebook change, each cell it closes, each completion's cells
above and cursor), is the client's; the recording rebuilds to the client's texts, and a replay of it holds the same
notebooks and asks for the same completions."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter

import pytest

from telemetry.lsp_client import NOTEBOOK_DID_CHANGE, LspClient, change_at, text_document_item
from telemetry.reader import open_readonly
from telemetry.reconstruct import build_script
from telemetry.replay import ReplayOptions, replay
from telemetry.text import offset_at
from tests.lsp_support import SAMPLE, Editor, inside, model_under_test, server_command

NB_TYPE = "jupyter-notebook"
FILE = "file:///project/beside.py"
CLIENT = "notebook-editor"
# Windows wider than any cell here: every request's context holds its whole cell and all the cells above it.
OPTIONS = {"decodingPolicy": "full", "acceptanceGate": False, "maxNewTokens": 4, "stopThreshold": 0.9,
           "contextPrefixChars": 4096, "contextSuffixChars": 4096}
SNIPPETS = ["import os\n", "x = 1\n", "def f(a):\n    return a\n", "", "print(x)", "for i in range(3):\r\n    pass\r\n",
            "\n\n", "data = {'a': 1}\n"]
STEPS = 150
STEP_KINDS = {"type in the file", "type in a cell", "complete in the file", "complete in a first cell",
              "complete in a cell with cells above", "add", "delete", "move", "switch away", "switch back",
              "no Python cell left", "close", "reopen"}


class Cell(Editor):
    """A cell as the editor has it: its document (text, version) and language; only Python cells are synced."""

    def __init__(self, rng: random.Random, uri: str, text: str) -> None:
        super().__init__(rng, text)
        self.uri, self.language = uri, "python"


class Notebook:
    """A notebook as the editor has it: all its cells, in order, whatever their language."""

    def __init__(self, uri: str, cells: list[Cell]) -> None:
        self.uri, self.cells, self.version = uri, cells, 1
        self.in_editor = True
        self.synced: list[str] | None = None  # notebook.js's syncInfo: the cells the server holds; None: not synced
        self.sent_version = 0  # the notebook version the server was last sent


def compute_diff(old: list[str], new: list[str]) -> tuple[int, int, list[str]] | None:
    """notebook.js's $NotebookCell.computeDiff over cell URIs: one array change from ``old`` to ``new``."""
    start = 0
    while start < len(new) and start < len(old) and old[start] == new[start]:
        start += 1
    if start < len(new) and start < len(old):
        old_end, new_end = len(old) - 1, len(new) - 1
        while old_end >= 0 and new_end >= 0 and old[old_end] == new[new_end]:
            old_end, new_end = old_end - 1, new_end - 1
        return start, old_end + 1 - start, new[start:new_end + 1]
    if start < len(new):
        return start, 0, new[start:]
    if start < len(old):
        return start, len(old) - start, []
    return None


def earlier_cells_chars(nb: Notebook, cell: Cell) -> int:
    """How much of the cells above ``cell`` a completion's prompt holds: each synced cell's text without its trailing
    line breaks and a blank line after it, blank cells left out (lsp_server.services.notebooks)."""
    at = nb.synced.index(cell.uri)
    by_uri = {c.uri: c for c in nb.cells}
    bodies = [by_uri[uri].text.rstrip("\r\n") for uri in nb.synced[:at]]
    return sum(len(body) + 2 for body in bodies if body.strip())


class Session:
    """The client: VS Code's notebooks and a file, each change sent as notebook.js sends it, and what the server
    should log for it."""

    def __init__(self, rng: random.Random, client: LspClient) -> None:
        self.rng, self.client = rng, client
        self.handles = itertools.count()
        self.notebooks: list[Notebook] = []
        self.file = Editor(rng, SAMPLE)
        self.rows: list[tuple] = []  # notebooks rows: (notebook uri, version, kind, cells)
        self.snapshots: list[tuple] = []  # (uri, version, text) of each cell document the server closes, in order
        self.requests: list[tuple] = []  # each completion: (uri, version, line, character, offset, length, earlier)
        self.answered = 0
        self.done: Counter[str] = Counter()  # the kinds of step taken

    # -- notebooks ----------------------------------------------------------------------------------------------------
    def new_cell(self, nb_uri: str) -> Cell:
        path = nb_uri.removeprefix("file://")
        return Cell(self.rng, f"vscode-notebook-cell:{path}#W{next(self.handles)}sZmlsZQ%3D%3D",
                    self.rng.choice(SNIPPETS))

    def open_notebook(self, n: int) -> None:
        uri = f"file:///project/nb{n}.ipynb"
        nb = Notebook(uri, [])
        nb.cells = [self.new_cell(uri) for _ in range(self.rng.randint(2, 5))]
        self.notebooks.append(nb)
        self.sync(nb)

    def closed_by_server(self, uris: list[str], cells: list[Cell]) -> None:
        """The server closes these cells' documents, logging the text and version it holds: the client's."""
        held = {c.uri: c for c in cells}
        self.snapshots += [(uri, held[uri].version, held[uri].text) for uri in uris]

    def sync(self, nb: Notebook, all_cells: list[Cell] | None = None) -> None:
        """Tell the server the notebook's Python cells after its cells or a cell's language changed, as notebook.js
        does: opened when it had none, closed when none are left, else one array change from the cells it has.
        ``all_cells``: the cells before the change too (a deleted cell's document is closed with its text)."""
        known = {c.uri: c for c in [*(all_cells or []), *nb.cells]}
        new = [c.uri for c in nb.cells if c.language == "python"] if nb.in_editor else []
        old = nb.synced
        if old is None:
            if new:
                self.client.did_open_notebook(nb.uri, NB_TYPE, nb.version,
                                              [text_document_item(u, known[u].text, known[u].version) for u in new])
                nb.synced, nb.sent_version = new, nb.version
                self.rows.append((nb.uri, nb.version, "open", new))
            return
        if not new:
            if nb.in_editor:  # its last Python cell deleted or switched away, not the notebook closed
                self.done["no Python cell left"] += 1
            # didClose lists the synced cells still in the notebook; the server closes the others itself
            listed = [c.uri for c in nb.cells if c.uri in old]
            self.client.did_close_notebook(nb.uri, listed)
            self.closed_by_server(listed + [u for u in old if u not in listed], list(known.values()))
            self.rows.append((nb.uri, nb.sent_version, "close", []))
            nb.synced = None
            return
        diff = compute_diff(old, new)
        if diff is None:  # the change left the Python cells as they were: nothing is sent
            return
        start, delete, inserted = diff
        removed = old[start:start + delete]
        opened = [u for u in inserted if u not in removed]
        closed = [u for u in removed if u not in inserted]
        array = {"start": start, "deleteCount": delete, **({"cells": [{"kind": 2, "document": u} for u in inserted]}
                                                            if inserted else {})}
        self.client.notify(NOTEBOOK_DID_CHANGE, {"notebookDocument": {"uri": nb.uri, "version": nb.version},
                                                 "change": {"cells": {"structure": {
                                                     "array": array,
                                                     "didOpen": [text_document_item(u, known[u].text, known[u].version)
                                                                 for u in opened],
                                                     "didClose": [{"uri": u} for u in closed]}}}})
        self.closed_by_server(closed, list(known.values()))
        nb.synced, nb.sent_version = new, nb.version
        self.rows.append((nb.uri, nb.version, "change", new))

    def switch_away(self, nb: Notebook, cell: Cell) -> None:
        """A Python cell switched to SQL: VS Code closes its document and notebook.js drops the cell as it sends it
        (an array change with no cells and no didOpen), or closes the notebook when it was the last one synced."""
        cell.language = "sql"
        nb.version += 1
        index = nb.synced.index(cell.uri)
        if len(nb.synced) == 1:
            self.sync(nb)
            return
        self.client.notify(NOTEBOOK_DID_CHANGE, {"notebookDocument": {"uri": nb.uri, "version": nb.version},
                                                 "change": {"cells": {"structure": {
                                                     "array": {"start": index, "deleteCount": 1},
                                                     "didClose": [{"uri": cell.uri}]}}}})
        self.closed_by_server([cell.uri], nb.cells)
        nb.synced = [u for u in nb.synced if u != cell.uri]
        nb.sent_version = nb.version
        self.rows.append((nb.uri, nb.version, "change", nb.synced))

    # -- steps --------------------------------------------------------------------------------------------------------
    def open_notebooks(self) -> list[Notebook]:
        return [nb for nb in self.notebooks if nb.in_editor]

    def step(self) -> None:
        roll = self.rng.random()
        notebooks = self.open_notebooks()
        nb = self.rng.choice(notebooks) if notebooks else None
        if roll < 0.4:
            self.type()
        elif roll < 0.65:
            self.complete()
        elif nb is None or roll < 0.68:
            self.close_or_reopen(self.rng.choice(self.notebooks))
        elif roll < 0.79:  # a new cell
            self.done["add"] += 1
            nb.cells.insert(self.rng.randint(0, len(nb.cells)), self.new_cell(nb.uri))
            nb.version += 1
            self.sync(nb)
        elif roll < 0.85 and nb.cells:  # a cell deleted
            self.done["delete"] += 1
            before = list(nb.cells)
            nb.cells.pop(self.rng.randrange(len(nb.cells)))
            nb.version += 1
            self.sync(nb, before)
        elif roll < 0.92 and len(nb.cells) > 1:  # a cell moved
            self.done["move"] += 1
            at = self.rng.randrange(len(nb.cells))
            cell = nb.cells.pop(at)
            nb.cells.insert(self.rng.choice([i for i in range(len(nb.cells) + 1) if i != at]), cell)
            nb.version += 1
            self.sync(nb)
        elif nb.cells:  # a cell's language switched away from Python, or back
            cell = self.rng.choice(nb.cells)
            self.done["switch " + ("away" if cell.language == "python" else "back")] += 1
            if cell.language == "python":
                self.switch_away(nb, cell)
            else:
                cell.language = "python"
                nb.version += 1
                self.sync(nb)  # its document reopened: notebook.js merges it back as a structure change
        assert self.client.proc.poll() is None, "the server died"

    def close_or_reopen(self, nb: Notebook) -> None:
        """Closed: didClose with its synced cells. Reopened: its cells' documents start again at version 1."""
        self.done["close" if nb.in_editor else "reopen"] += 1
        if nb.in_editor:
            nb.in_editor = False
            if nb.synced is not None:
                self.sync(nb)
            return
        nb.in_editor, nb.version = True, 1
        for cell in nb.cells:
            cell.version = 1
        self.sync(nb)

    def document(self, python_only: bool) -> tuple[Notebook | None, Editor]:
        """The file one time in five, else a random cell of an open notebook (and its notebook; None with the file)."""
        cells = [(nb, c) for nb in self.open_notebooks() for c in nb.cells if c.language == "python" or not python_only]
        return self.rng.choice(cells) if cells and self.rng.random() < 0.8 else (None, self.file)

    def type(self) -> None:
        nb, doc = self.document(python_only=False)
        self.done["type in " + ("the file" if nb is None else "a cell")] += 1
        change = doc.edit()
        if nb is None:
            self.client.did_change(FILE, doc.version, [change])
        elif doc.language == "python":  # another language's cell is not synced: its changes are not sent
            self.client.did_change_notebook_text(nb.uri, nb.version, doc.uri, doc.version, [change])
            nb.sent_version = nb.version

    def complete(self) -> None:
        nb, doc = self.document(python_only=True)
        self.done["complete in " + ("the file" if nb is None else "a cell with cells above" if nb.synced.index(doc.uri)
                                    else "a first cell")] += 1
        uri = FILE if nb is None else doc.uri
        line, character = doc.position()
        earlier = 0 if nb is None else earlier_cells_chars(nb, doc)
        self.requests.append((uri, doc.version, line, character, offset_at(doc.text, line, character), len(doc.text),
                              earlier))
        items = self.client.inline_completion(uri, line, character, invoked=self.rng.random() < 0.5, timeout=60)
        self.answered += 1
        for item in items:
            assert inside(doc.text, item["range"]), (item, doc.text)

    def held(self) -> dict[str, Editor]:
        """The documents the server should hold now: the file and the synced cells."""
        docs: dict[str, Editor] = {FILE: self.file}
        for nb in self.notebooks:
            docs.update((c.uri, c) for c in nb.cells if nb.synced is not None and c.uri in nb.synced)
        return docs


def _logged(db, client: str) -> tuple[list[tuple], list[tuple]]:
    """The notebooks rows (uri, version, kind, cells) and completion requests (uri, version, line, character, context)
    of the sessions ``client`` opened, in order."""
    conn = open_readonly(db)
    try:
        rows = conn.execute("SELECT n.notebook_uri, n.version, n.kind, n.cells FROM notebooks n JOIN sessions s"
                            " ON s.id = n.session_id WHERE s.client_name = ? ORDER BY n.seq", [client]).fetchall()
        requests = conn.execute("SELECT g.uri, g.version, g.line, g.character, g.context FROM suggestions g"
                                " JOIN sessions s ON s.id = g.session_id WHERE s.client_name = ? AND g.kind ="
                                " 'completion' ORDER BY g.requested_at, g.id", [client]).fetchall()
    finally:
        conn.close()
    return ([(uri, version, kind, json.loads(cells)) for uri, version, kind, cells in rows],
            [(uri, version, line, character, json.loads(context or "{}"))
             for uri, version, line, character, context in requests])


# Seeds whose sessions take every kind of step (the coverage check below fails a seed that does not). Seeds 1 to 24
# all hold, log and replay their sessions faithfully since a replay moves a document's version for changes that left
# its text as it was; these are the ones that also take every kind of step.
@pytest.mark.parametrize("seed", [1, 2, 11, 12, 18, 22])
def test_a_random_notebook_session_is_held_logged_and_replayed_as_the_client_sent_it(tmp_path, seed):
    rng = random.Random(seed)
    db = tmp_path / "recorded.sqlite3"
    client = LspClient(server_command(model_under_test(), db))
    session = Session(rng, client)
    try:
        client.initialize(OPTIONS, client_name=CLIENT)
        client.did_open(FILE, session.file.text)
        for n in range(rng.randint(1, 2)):
            session.open_notebook(n)
        for _ in range(STEPS):
            session.step()
        status = client.request("tact/status", timeout=10)
        session_id = status["sessionId"]
    finally:
        client.shutdown()
    assert session.answered > 20
    assert set(session.done) == STEP_KINDS, session.done  # the session did not drift away from what it is to test
    assert any(earlier for *_, earlier in session.requests)

    # The server's view at each step, as it logged it.
    rows, requests = _logged(db, CLIENT)
    assert rows == session.rows
    # each completion: where, at which version, the cursor's offset and the cell's length, the cells above
    assert [(uri, version, line, character, ctx.get("offset"), ctx.get("prefix_chars", 0) + ctx.get("suffix_chars", 0),
             ctx.get("earlier_cells_chars", 0)) for uri, version, line, character, ctx in requests] == session.requests
    held = session.held()
    conn = open_readonly(db)
    try:
        snapshots = conn.execute("SELECT uri, version, text FROM documents WHERE kind = 'snapshot' ORDER BY seq")
        snapshots = snapshots.fetchall()
        script = build_script(conn, session_id)
    finally:
        conn.close()
    # each cell document the server closed had the client's text; so had each one left at shutdown
    assert snapshots[:len(snapshots) - len(held)] == session.snapshots
    assert {uri: (version, text) for uri, version, text in snapshots[len(snapshots) - len(held):]} == \
        {uri: (doc.version, doc.text) for uri, doc in held.items()}

    # The recording rebuilds to the client's texts.
    assert script.issues == [] and all(script.verified.values())
    assert {uri: script.final_texts[uri] for uri in held} == {uri: doc.text for uri, doc in held.items()}

    # A replay holds the same notebooks and asks for the same completions, each with the same cells above.
    out = tmp_path / "replayed.sqlite3"
    (result,) = replay(db, out, options=ReplayOptions(model=str(model_under_test())))
    assert result.complete and result.issues == []
    replayed_rows, replayed = _logged(out, "tact-replay")
    assert [(r[0], r[2], r[3]) for r in replayed_rows] == [(r[0], r[2], r[3]) for r in rows]
    key = [(uri, version, line, character, ctx.get("earlier_cells_chars", 0))
           for uri, version, line, character, ctx in requests]
    assert [(uri, version, line, character, ctx.get("earlier_cells_chars", 0))
            for uri, version, line, character, ctx in replayed] == key


@pytest.mark.parametrize("changes", [
    [change_at(0, 0, "x", 0, 1)],  # "x" pasted over the selected "x"
    [change_at(0, 5, "\n"), change_at(0, 5, "", 1, 0)],  # a line break typed and deleted again
], ids=["same text pasted over itself", "typed and deleted"])
def test_a_completion_after_changes_that_leave_the_text_as_it_was_replays_at_its_version(tmp_path, changes):
    """The edit stream drops an edit that changes nothing (EditHistory in lsp_server/services/documents.py), so
    nothing logged says the document's version moved: a replay sent no change for it, and the completion requested
    after it was asked of the replaying server at the version before (1 here, logged 2 or 3), though its text was the
    same. Random sessions hit this on many seeds. The replay now moves the version with an empty change."""
    db = tmp_path / "recorded.sqlite3"
    with LspClient(server_command(model_under_test(), db)) as client:
        client.initialize(OPTIONS, client_name=CLIENT)
        client.did_open(FILE, "x = 1\n")
        for version, change in enumerate(changes, start=2):  # one didChange each, as typed
            client.did_change(FILE, version, [change])
        client.inline_completion(FILE, 0, 5, invoked=True, timeout=60)
        client.shutdown()
    (result,) = replay(db, tmp_path / "replayed.sqlite3", options=ReplayOptions(model=str(model_under_test())))
    assert result.complete and result.issues == []
    recorded = [(uri, version, line, character) for uri, version, line, character, _ in _logged(db, CLIENT)[1]]
    replayed = [(uri, version, line, character)
                for uri, version, line, character, _ in _logged(tmp_path / "replayed.sqlite3", "tact-replay")[1]]
    assert recorded == [(FILE, 1 + len(changes), 0, 5)]
    assert replayed == recorded
