"""Reading LSP's framed messages from a byte stream (stdio or TCP), forgiving of the framing mistakes clients make.

pygls's loop knew one header spelling, ``Content-Length: N`` with CRLF, and never found its way back: after one
message framed wrong (a length counted in characters rather than UTF-8 bytes, a byte off either way, a header in
lower case, as header names may be) it read every later header glued to the body before it, and the server, still
running, answered nothing more for the rest of the session. Here header names are read case-insensitively and LF
line ends taken; a body whose length counted its UTF-16 units (a JavaScript string's length) is completed by exactly
the bytes that leaves out, one short otherwise from the line that follows it, one too long gives back what it took of
the next header, and a line that is no header is dropped up to the next ``Content-Length`` in it. A body that is no
JSON at all is answered with JSON-RPC's Parse error (id null) in one line of the log.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
from typing import Any, Awaitable, Callable, Protocol

from telemetry.text import utf16_len

log = logging.getLogger("tact.transport")

_HEADER = re.compile(rb"^\s*([A-Za-z][A-Za-z0-9-]*)\s*:\s*(.*?)\s*$", re.S)
_CONTENT_LENGTH = re.compile(rb"content-length\s*:", re.I)
# A body found short is completed from the lines after it up to this much more: a body is one line of compact JSON
# in every client, pretty-printed JSON holds its line breaks.
_MAX_COMPLETION_BYTES = 1 << 20
# The longest body read: VS Code syncs no file over 50 MB to its extensions. A length past it (10**12, a header from
# another protocol) would be read, or allocated, whole; its message is skipped, its bytes dropped as no header.
MAX_BODY_BYTES = 256 << 20


class ByteReader(Protocol):
    def readline(self) -> Awaitable[bytes]: ...

    def readexactly(self, n: int) -> Awaitable[bytes]: ...


class ParseFailure(Exception):
    """A body that is no JSON message (what the JSON reader said); answered Parse error. ``cut``: its text ends
    inside a character's bytes, as a body cut short does."""

    def __init__(self, reason: str, cut: bool = False) -> None:
        super().__init__(reason)
        self.cut = cut


class PushbackReader:
    """A reader that can take back bytes read ahead, to be read again first."""

    def __init__(self, reader: ByteReader) -> None:
        self._reader = reader
        self._ahead = b""
        self._at = 0  # where the bytes read ahead not yet read again start: reads move it, copying nothing behind

    def push_back(self, data: bytes) -> None:
        self._ahead = data + self._ahead[self._at:]
        self._at = 0

    def _take(self, end: int) -> bytes:
        taken = self._ahead[self._at:end]
        self._at = end
        if self._at >= len(self._ahead):
            self._ahead, self._at = b"", 0
        return taken

    async def readline(self) -> bytes:
        if self._at < len(self._ahead):
            cut = self._ahead.find(b"\n", self._at)
            if cut >= 0:
                return self._take(cut + 1)
            return self._take(len(self._ahead)) + await self._reader.readline()
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        taken = self._take(min(len(self._ahead), self._at + n)) if self._at < len(self._ahead) else b""
        if len(taken) == n:
            return taken
        try:
            rest = await self._reader.readexactly(n - len(taken))
        except asyncio.IncompleteReadError as exc:  # a TCP stream that ended: what it held
            rest = exc.partial
        return taken + rest


_NEXT_HEADERS = re.compile(rb"content-(?:length|type)\s*:", re.I)  # where a next message's headers begin
_CUT_SLACK = 8  # characters from the end within which a JSON error may be the text ending early (`tru`, `\u00`)


def _looks_cut_short(exc: Exception) -> bool:
    """Whether the text ended early (a length counted short) rather than being bad: the JSON reader failed at its
    end, or the UTF-8 decoder did inside a character's bytes."""
    if isinstance(exc, ParseFailure):
        return exc.cut
    return isinstance(exc, json.JSONDecodeError) and (exc.pos >= len(exc.doc) - _CUT_SLACK
                                                       or exc.msg.startswith("Unterminated string"))


def _decode(body: bytes, hook: Callable[[dict], Any]) -> Any:
    """``body`` as a message; raises ParseFailure (the JSON reader's words) or JSONDecodeError (to complete)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseFailure(f"not UTF-8 ({exc.reason} at byte {exc.start})",
                           cut=exc.reason == "unexpected end of data") from None
    try:
        return json.loads(text, object_hook=hook)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, nesting past Python's limit
        raise ParseFailure(f"{type(exc).__name__}: {exc}") from None


class MessageReader:
    """Framed messages from ``reader`` decoded with ``hook`` (the protocol's object hook)."""

    def __init__(self, reader: ByteReader, hook: Callable[[dict], Any]) -> None:
        self._stream = PushbackReader(reader)
        self._hook = hook
        self._said: set[str] = set()

    def _say_once(self, kind: str, message: str, *args) -> None:
        """One line in the log a session for each kind of framing mistake: a client that makes one makes it often."""
        if kind not in self._said:
            self._said.add(kind)
            log.warning(message + " (said once a session)", *args)

    async def next(self) -> tuple[Any, str | None] | None:
        """The next message and None, or None and why its body is no message (it was skipped); None at the end."""
        length = None
        while True:
            line = await self._stream.readline()
            if not line:
                return None
            if not line.strip():  # the headers' end
                if length is None:
                    continue  # a blank line between messages
                return await self._body(length)
            header = _HEADER.match(line)
            resync = _CONTENT_LENGTH.search(line, 1)  # a header after other bytes on the line: junk before it
            if header is not None and resync is None:
                name, value = header.group(1).lower(), header.group(2)
                if name != b"content-length":
                    continue  # Content-Type, or another header: nothing to read in it
                if not value.isdigit() or len(value) > 12 or int(value) > MAX_BODY_BYTES:  # 4,301 digits: int raised
                    self._say_once("length", "a Content-Length that is no number or over %d bytes (%r): its message "
                                             "is skipped", MAX_BODY_BYTES, value[:40])
                    length = None
                    continue
                length = int(value)
                if not (line.startswith(b"Content-Length: ") and line.endswith(b"\r\n")):
                    self._say_once("spelling", "a Content-Length header written %r, not as LSP spells it: read all "
                                               "the same", line[:40])
                continue
            if resync is not None:
                self._say_once("junk", "%d bytes that were no header before a Content-Length were dropped (a message "
                                       "framed with a wrong length?)", resync.start())
                self._stream.push_back(line[resync.start():])
                length = None
                continue
            self._say_once("junk-line", "a line that is no header was dropped: %r", line[:40])

    async def _body(self, length: int) -> tuple[Any, str | None] | None:
        body = await self._stream.readexactly(length)
        if len(body) < length:
            return None  # the stream ended inside it
        try:
            return _decode(body, self._hook), None
        except ParseFailure as exc:
            failure: Exception = exc
        except json.JSONDecodeError as exc:
            if exc.msg.startswith("Extra data"):  # counted long: what it took of the next header goes back
                message, end = self._split(body)
                if message is not None:
                    self._stream.push_back(body[end:])
                    self._say_once("long", "a message %d bytes shorter than its Content-Length: read, and the next "
                                           "header with it", length - end)
                    return message, None
            failure = exc
        message = await self._counted_in_units(body, length)
        if message is not None:
            return message, None
        if _looks_cut_short(failure):
            return await self._complete(body, failure)
        return None, str(failure) if isinstance(failure, ParseFailure) else f"not JSON ({failure})"

    def _split(self, data: bytes) -> tuple[Any, int]:
        """(the JSON message ``data`` starts with, the byte it ends at), or (None, 0); bytes after it (another
        message's header, part of its body) may be anything."""
        text = data.decode("utf-8", "surrogateescape")
        start = len(text) - len(text.lstrip())
        try:
            message, end = json.JSONDecoder(object_hook=self._hook).raw_decode(text, start)
        except (ValueError, RecursionError):
            return None, 0
        if any("\udc80" <= c <= "\udcff" for c in text[:end]):  # bytes that are no UTF-8 inside it
            return None, 0
        return message, len(text[:end].encode("utf-8", "surrogateescape"))

    async def _counted_in_units(self, body: bytes, length: int) -> Any:
        """The message whose length counted its UTF-16 units (a JavaScript string's length), not its bytes, or None.
        Its body is then short by as many bytes as its text has units more than bytes: exactly that many are read,
        never past the message (a unit is a byte at least), so a client waiting for this answer is not waited for in
        turn. A body short by some bytes only (with text of more bytes than units) is read past its end: the bytes
        after the message go back to be read as the next."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            units = utf16_len(decoder.decode(body))
        except UnicodeDecodeError:
            return None
        grown = body
        while units < length:
            wanted = length - units
            more = await self._stream.readexactly(wanted)
            grown += more
            try:
                units += utf16_len(decoder.decode(more))
            except UnicodeDecodeError:
                break
            if len(more) < wanted:  # the stream ended
                break
        if len(grown) == len(body):
            return None
        message, end = self._split(grown)
        if message is None:  # no message either way: what was read past the body goes back
            self._stream.push_back(grown[len(body):])
            return None
        self._stream.push_back(grown[end:])
        self._say_once("short", "a message %d bytes longer than its Content-Length (a length in characters, not "
                                "UTF-8 bytes?): read whole", end - length)
        return message

    async def _complete(self, body: bytes, first: Exception) -> tuple[Any, str | None]:
        """A body that ends early and is no length in units: completed from the line(s) after it, up to the next
        message's headers, which go back to be read. This waits for the client's next line: a client that sends
        nothing more until this is answered is not answered."""
        extra = b""
        while len(extra) <= _MAX_COMPLETION_BYTES:
            line = await self._stream.readline()
            if not line:
                break
            found = _NEXT_HEADERS.search(line)
            if found is not None:
                self._stream.push_back(line[found.start():])
                extra += line[:found.start()]
                break
            extra += line
        try:
            message = _decode(body + extra, self._hook)
        except (ParseFailure, json.JSONDecodeError):  # what it read after the body is dropped with it
            return None, str(first) if isinstance(first, ParseFailure) else f"not JSON ({first})"
        self._say_once("short", "a message %d bytes longer than its Content-Length (a length in characters, not "
                                "UTF-8 bytes?): read whole", len(extra))
        return message, None


async def run_messages(stop: Callable[[], bool], reader: ByteReader, protocol, parse_error: Callable[[str], None],
                       error_handler: Callable[[Exception, type], Any] | None = None,
                       error_type: type = Exception) -> None:
    """pygls's ``run_async`` over a MessageReader: each message to ``protocol.handle_message``; a body that is no
    message to ``parse_error(reason)``; ends when the stream does or ``stop()`` says so."""
    messages = MessageReader(reader, protocol.structure_message)
    while not stop():
        found = await messages.next()
        if found is None:
            break
        message, problem = found
        if problem is not None:
            parse_error(problem)
            continue
        try:
            protocol.handle_message(message)
        except Exception as exc:
            logging.getLogger("pygls.server").exception("Unable to handle message")
            if error_handler is not None:
                error_handler(exc, error_type)
