"""Suggestions the server has handed out, so feedback (shown, accepted, rejected) can find them.

Bounded: old entries fall out; feedback for an unknown id is still logged, just not cross-checked.
Listeners (e.g. the acceptance gate) hear every outcome of a known suggestion: ``(id, outcome)``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, NamedTuple

from telemetry.events import TYPED_ALONG

log = logging.getLogger("tact.ledger")

# The outcome of a suggestion that ended without the user deciding (rejected `ignored`: focus moved away, the
# extension stopped, the user typed it out by hand): ended, and no rejection the acceptance gate counts.
UNDECIDED = "undecided"
# The outcome the listeners hear of an accepted suggestion the user took back soon after (undid the accept, or deleted
# its text whole: `UndoWatch`): no acceptance for the gate's running rate, a rejection in its place.
UNDONE = "undone"
# How much of the open suggestion the user typed since it was issued (`SuggestionLedger.issue`): a start of it, all.
TYPED_PART, TYPED_WHOLE = "part", "whole"


@dataclass
class IssuedSuggestion:
    id: str
    kind: str  # completion | next_edit
    uri: str
    version: int
    text: str
    shown: bool = False
    outcome: str | None = None  # accepted | rejected | UNDECIDED | UNDONE (a partial accept leaves it open)
    # UTF-16 units of the selected completion entry the editor's item carries before the suggestion's own text
    # (SelectedCompletion): a partial accept's length counts them, the suggestion does not hold them
    selected_units: int = 0
    # What a classic completion item's edit writes: (line, character, text) from the start of its range. A client
    # that never runs the item's command (Emacs's eglot) is known to have accepted it by an edit that writes it.
    item_edit: tuple[int, int, str] | None = None
    # Where a completion's text (a next edit's new text) starts in the document, (line, UTF-16 character), where it
    # is known (not after a selected entry, which the document does not hold): the user typing its first characters
    # is told by it, and an accept is watched from it (`UndoWatch`).
    start: tuple[int, int] | None = None
    # What a next edit's range held when it was issued: the undo of its accept writes this back (where it holds the
    # new text, as a rename to a shorter name does, the new text written again is no sign the accept stayed).
    replaced: str | None = None
    # Listed where the user has not looked (an automatic code action's edit, behind a lightbulb): shown only once
    # applied. Superseded or closed before that, it is cancelled, no one's rejection.
    listed_only: bool = False


class Ended(NamedTuple):
    """A suggestion a newer one ended: ``outcome`` rejected (its reason: superseded), or cancelled where the client
    reports what it shows and never showed it (no one turned it down), or where the user typed its first characters
    before the newer one came (``TYPED_ALONG``: they went on with it, and the newer one carries their decision), or
    ``UNDECIDED`` (rejected ``ignored``) where the user typed it out by hand or nothing newer carries it on."""

    id: str
    outcome: str
    reason: str = "superseded"


class SuggestionLedger:
    def __init__(self, capacity: int = 2000) -> None:
        self._items: OrderedDict[str, IssuedSuggestion] = OrderedDict()
        self._open_by_uri: dict[tuple[str, str], str] = {}  # (kind, uri) -> newest unresolved id
        # (kind, uri) -> the shown one a newer answer left open: the editor may show it still (VS Code keeps a
        # suggestion it partly accepted on screen while it asks for the next); a newer one shown ends it
        self._on_screen: dict[tuple[str, str], str] = {}
        self._capacity = capacity
        self._lock = threading.Lock()
        self.listeners: list[Callable[[str, str], None]] = []  # called with (suggestion id, outcome)
        # the kinds the client has said it showed a suggestion of (VS Code does; most editors never do, and a show the
        # server records for them, a code action the user asked for, says nothing of what they report)
        self.reports_shows: set[str] = set()
        # Ids are this ledger's prefix and a count: feedback for an id of another server (an earlier session's
        # suggestion still on screen when the server restarted) is told from one this ledger evicted (`issued_here`).
        self._id_prefix = uuid.uuid4().hex[:8]
        self._issued = itertools.count()

    def _tell(self, suggestion_id: str, outcome: str) -> None:
        for listener in self.listeners:
            try:
                listener(suggestion_id, outcome)
            except Exception:  # a listener must never break feedback handling
                log.warning("outcome listener failed", exc_info=True)

    def new_id(self) -> str:
        return f"{self._id_prefix}{next(self._issued):08x}"

    def issued_here(self, suggestion_id: str) -> bool:
        """Whether this ledger issued ``suggestion_id``: it holds it, or the id has its prefix (one it evicted)."""
        with self._lock:
            if suggestion_id in self._items:
                return True
        return suggestion_id.startswith(self._id_prefix) and len(suggestion_id) == len(self._id_prefix) + 8

    def issue(self, item: IssuedSuggestion, typed: str = "") -> Ended | None:
        """Register a suggestion returned to the editor; returns the unresolved one it ends, if any. Where the client
        reports what it shows, one it never showed is cancelled, not rejected (the user never saw it: counted as a
        rejection, it taught the acceptance gate seven of one session's eight), and one it showed stays open (see
        ``_on_screen``): rejected by the newer one, it was ended while the user went on accepting it word by word.
        Where it does not, one the user went on typing (``typed``: ``TYPED_PART``, the text typed since it is its
        start) is cancelled ``TYPED_ALONG``: Neovim asks again at each keystroke, and typing two characters of a
        suggestion before accepting the rest read as two rejections and one accept. One typed out whole
        (``TYPED_WHOLE``) ends ``UNDECIDED``, as VS Code ends it (``ignored``)."""
        key = (item.kind, item.uri)
        with self._lock:
            ended = self._supersede(key, typed)
            self._items[item.id] = item
            self._open_by_uri[key] = item.id
        if ended:
            self._tell(ended.id, ended.outcome)
        with self._lock:  # after the listeners, which look the superseded one up (its kind): it may be the oldest
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return ended

    def supersede(self, kind: str, uri: str, typed: str = "", carried: bool = True) -> Ended | None:
        """End the open suggestion of ``kind`` in ``uri`` as a newer one elsewhere replaced it (a next edit answered
        in another cell of the notebook), by `issue`'s rule, or as a newer request answered with nothing (not
        ``carried``: one typed along ends ``UNDECIDED``, no newer one carrying the decision); returns it, if it
        ended."""
        with self._lock:
            ended = self._supersede((kind, uri), typed, carried)
        if ended:
            self._tell(ended.id, ended.outcome)
        return ended

    def _supersede(self, key: tuple[str, str], typed: str = "", carried: bool = True) -> Ended | None:
        """(Under the lock.) The rule of `issue` for the open suggestion at ``key``, which is open no longer."""
        older = self._open_by_uri.pop(key, None)
        if older is None or older not in self._items or self._items[older].outcome is not None:
            return None
        reported = key[0] in self.reports_shows
        if reported and self._items[older].shown:
            self._on_screen[key] = older
            return None
        if self._items[older].listed_only and not self._items[older].shown:
            ended = Ended(older, "cancelled")
        elif typed and not reported:
            carried_on = carried and typed == TYPED_PART
            ended = Ended(older, "cancelled", TYPED_ALONG) if carried_on else Ended(older, UNDECIDED, "ignored")
        else:
            ended = Ended(older, "cancelled" if reported else "rejected")
        self._items[older].outcome = ended.outcome
        return ended

    def close_document(self, uri: str, reason: str = "documentClosed") -> list[Ended]:
        """The document closed: its suggestions still open (one per kind) are rejected, as a newer one rejects them
        (one only listed, never shown, is cancelled); returns them, with ``reason``. No client ends a suggestion whose
        document went away, so they stayed open for good."""
        with self._lock:
            closed = []
            for table in (self._on_screen, self._open_by_uri):
                for key in [k for k in table if k[1] == uri]:
                    sid = table.pop(key)
                    item = self._items.get(sid)
                    if item is not None and item.outcome is None:
                        item.outcome = "cancelled" if item.listed_only and not item.shown else "rejected"
                        closed.append(Ended(sid, item.outcome, reason))
        for ended in closed:
            self._tell(ended.id, ended.outcome)
        return closed

    def list_only(self, suggestion_id: str) -> None:
        """``suggestion_id`` is listed where the user has not looked (see ``IssuedSuggestion.listed_only``)."""
        with self._lock:
            if (item := self._items.get(suggestion_id)) is not None:
                item.listed_only = True

    def get(self, suggestion_id: str) -> IssuedSuggestion | None:
        return self._items.get(suggestion_id)

    def open_item(self, kind: str, uri: str) -> IssuedSuggestion | None:
        """The newest suggestion of ``kind`` in ``uri`` that nothing has resolved yet, if any."""
        with self._lock:
            item = self._items.get(self._open_by_uri.get((kind, uri), ""))
            return item if item is not None and item.outcome is None else None

    def resolve(self, suggestion_id: str, outcome: str) -> IssuedSuggestion | None:
        """``suggestion_id`` ended ``outcome`` (``UNDONE`` too: its accept taken back), listeners told. A partial
        accept leaves it open, and reopens one taken back (a redo of the words accepted)."""
        with self._lock:
            item = self._items.get(suggestion_id)
            if item is not None and outcome != "partially_accepted":
                item.outcome = outcome
            elif item is not None and item.outcome == UNDONE:
                item.outcome = None
        if item is not None:
            self._tell(suggestion_id, outcome)
        return item

    def mark_shown(self, suggestion_id: str, reported: bool = True) -> str | None:
        """``suggestion_id`` was shown: ``reported`` by the client, or recorded by the server itself (a code action
        the user asked for); returns the id of the shown one it replaces on screen (left open by `issue`), now
        rejected as superseded."""
        with self._lock:
            item = self._items.get(suggestion_id)
            if item is None:
                return None
            if reported:
                self.reports_shows.add(item.kind)
            item.shown = True
            key = (item.kind, item.uri)
            replaced = self._on_screen.get(key)
            if replaced is None or replaced == suggestion_id:
                return None
            del self._on_screen[key]
            old = self._items.get(replaced)
            if old is None or old.outcome is not None:
                return None
            old.outcome = "rejected"
        self._tell(replaced, "rejected")
        return replaced
