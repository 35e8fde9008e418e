"""What only a replay (or a simulation) sends. tact/replayClock: the client pins the clock of the acceptance gate's
timing features to its recording. tact/replayUndone: an accept its recording took back is taken back here too (the
undo may be no recorded edit).

The gate's features include typing speed and the time since the last outcome. A replay sends the session
faster than it was recorded (or at another pace), so it says, before each request and outcome, what time it
was in the recording; the features then see the recorded timeline, and two replays give the same decisions.
A simulation sends the simulated programmer's time the same way, and with the ``clientClock`` initialization option
that time is also the one telemetry records. Editors never send it; a live session keeps the wall clock.
"""

from __future__ import annotations

import logging
import reprlib

from lsp_server.config import finite_float
from lsp_server.features.commands import record_undone
from lsp_server.features.feedback import feedback_ignored, field, suggestion_id_of
from lsp_server.protocol import REPLAY_CLOCK, REPLAY_UNDONE

log = logging.getLogger("tact.feedback")


def register(server) -> None:
    @server.feature(REPLAY_CLOCK)
    def replay_clock(ls, params) -> None:
        ts = field(params, "ts")
        pinned = finite_float(ts)  # an int too large for a float is refused (float() raised)
        if pinned is None:
            log.warning("%s needs a finite ts (unix seconds), got %s", REPLAY_CLOCK, reprlib.repr(ts))
            return
        if not ls.recorder.accepts_pin(pinned):
            if ls.recorder.refused_pins == 1:  # once a session: a client whose clock runs back sends many
                log.warning("%s: %s is before the session's latest recorded time %s; the clock stays, and "
                            "stays for every such time (a recorded timeline only goes on)", REPLAY_CLOCK, pinned,
                            ls.recorder.latest_ts)
            return
        ls.gate.clock = lambda: pinned

    @server.feature(REPLAY_UNDONE)
    def replay_undone(ls, params) -> None:
        """The accept of ``{id}`` was taken back in the recording: where this server has not seen it so itself, it is
        now (an accept's text and its undo within the edit grouping window were one recorded edit that changed
        nothing). Only an accepted completion of this server's."""
        sid = suggestion_id_of(params, REPLAY_UNDONE)
        if sid is None or feedback_ignored(ls, sid, REPLAY_UNDONE, "completion"):
            return
        item = ls.ledger.get(sid)
        if item is None or item.outcome not in ("accepted", None):
            log.warning("%s for %s, which is not accepted: ignored", REPLAY_UNDONE, sid)
            return
        record_undone(ls, sid)
