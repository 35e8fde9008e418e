"""Reading framed LSP messages: one message framed wrong no longer leaves every later one unread (pygls's loop never
found its way back, and the server, still running, answered nothing more for the rest of the session)."""

from __future__ import annotations

import asyncio
import json

import pytest

from lsp_server.transport import MessageReader


class BytesReader:
    """A stream of ``data`` read as stdio's reader reads it."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def readline(self) -> bytes:
        cut = self._data.find(b"\n")
        cut = len(self._data) if cut < 0 else cut + 1
        line, self._data = self._data[:cut], self._data[cut:]
        return line

    async def readexactly(self, n: int) -> bytes:
        taken, self._data = self._data[:n], self._data[n:]
        return taken


def message(i: int, text: str = "x") -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "tact/status", "params": {"text": text}},
                      ensure_ascii=False).encode()


def framed(body: bytes, length: int | None = None, header: bytes = b"Content-Length: %d\r\n\r\n") -> bytes:
    return header % (len(body) if length is None else length) + body


def read_all(data: bytes) -> tuple[list, list[str]]:
    """(the ids of the messages read, the problems said) from ``data``."""
    reader = MessageReader(BytesReader(data), lambda d: d)

    async def run():
        ids, problems = [], []
        while (found := await reader.next()) is not None:
            msg, problem = found
            if problem is not None:
                problems.append(problem)
            else:
                ids.append(msg["id"])
        return ids, problems

    return asyncio.run(run())


def test_well_framed_messages_are_read_in_order():
    data = b"".join(framed(message(i)) for i in range(3))
    assert read_all(data) == ([0, 1, 2], [])


@pytest.mark.parametrize("case", ["characters", "one short", "one long", "three long"])
def test_a_length_counted_wrong_loses_neither_that_message_nor_the_next(case, caplog):
    body = message(1, "é naïve")  # 3 characters of 2 bytes
    length = {"characters": len(body.decode()), "one short": len(body) - 1, "one long": len(body) + 1,
              "three long": len(body) + 3}[case]
    data = framed(message(0)) + framed(body, length) + framed(message(2)) + framed(message(3))
    assert read_all(data) == ([0, 1, 2, 3], [])
    assert "said once a session" in caplog.text


@pytest.mark.parametrize("header", [b"content-length: %d\r\n\r\n", b"Content-Length:%d\r\n\r\n",
                                    b"Content-Length: %d\n\n", b"CONTENT-LENGTH : %d\r\n"
                                    b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"])
def test_headers_are_read_however_they_are_spelt(header):
    data = framed(message(0), header=header) + framed(message(1)) + framed(message(2), header=header)
    assert read_all(data) == ([0, 1, 2], [])


def test_bytes_that_are_no_header_are_dropped_up_to_the_next_content_length():
    data = framed(message(0)) + b"garbage without a line end" + framed(message(1)) + b"\r\nmore\r\n" + framed(message(2))
    assert read_all(data) == ([0, 1, 2], [])


@pytest.mark.parametrize("body,said", [(b"{this is not json", "Expecting property name"),
                                       (b"\xff\xfe{}", "not UTF-8"),
                                       (b"[" * 100_000 + b"]" * 100_000, "RecursionError"),
                                       (b'{"id": ' + b"9" * 5000 + b"}", "ValueError")])
def test_a_body_that_is_no_json_is_said_and_the_next_read(body, said):
    ids, problems = read_all(framed(body) + framed(message(1)))
    assert ids == [1] and len(problems) == 1 and said in problems[0]


@pytest.mark.parametrize("length", [b"ten", b"1000000000000", b"-5"])
def test_a_length_that_is_no_number_or_past_any_body_skips_its_message_only(length):
    """A length of 10**12 was read (or allocated) whole: the process ran out of memory."""
    data = b"Content-Length: " + length + b"\r\n\r\n" + b"{}" + framed(message(1))
    ids, _ = read_all(data)
    assert ids == [1]


def test_the_stream_ending_inside_a_body_ends_reading():
    assert read_all(framed(message(0)) + framed(message(1))[:-5]) == ([0], [])


class WaitingReader(BytesReader):
    """``data``, then a client that sends nothing more until it is answered: a read past the data waits for good."""

    async def readline(self) -> bytes:
        if not self._data:
            await asyncio.Event().wait()
        return await super().readline()

    async def readexactly(self, n: int) -> bytes:
        if len(self._data) < n:
            await asyncio.Event().wait()
        return await super().readexactly(n)


def first_message(data: bytes):
    async def run():
        return await asyncio.wait_for(MessageReader(WaitingReader(data), lambda d: d).next(), timeout=2)

    return asyncio.run(run())


def test_a_last_message_counted_in_characters_is_read_without_waiting_for_another():
    """Its missing bytes were looked for in the next line, which a client waiting for the answer (an initialize
    whose root is `Café`) never sent: neither side went on."""
    body = message(1, "Café naïve 😀 中文")
    utf16_units = len(body.decode().encode("utf-16-le")) // 2  # a JavaScript string's length
    message_, problem = first_message(framed(body, utf16_units))
    assert problem is None and message_["id"] == 1


@pytest.mark.parametrize("text", ["aé", "x" * 30 + "é", "中" * 40])
def test_a_length_in_characters_cutting_a_character_in_two_is_read(text):
    """The cut fell inside a character's bytes: "not UTF-8", and the message was lost."""
    body = message(1, text)
    assert read_all(framed(body, len(body.decode())) + framed(message(2))) == ([1, 2], [])


@pytest.mark.parametrize("tail", [b', "ok": true}', b', "ok": null}', b', "n": 12345}', b', "s": "\\u00e9"}'])
def test_a_body_cut_inside_a_literal_number_or_escape_is_completed(tail):
    """Cut inside `true` or a `\\u00e9` escape, the JSON error was not at the text's end: a Parse error."""
    body = message(1)[:-1] + tail
    data = framed(body, len(body) - 3) + framed(message(2))
    assert read_all(data) == ([1, 2], [])


def test_a_short_body_before_a_message_whose_first_header_is_content_type():
    body = message(1, "café")
    nxt = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + framed(message(2))
    assert read_all(framed(body, len(body.decode())) + nxt) == ([1, 2], [])


def test_a_length_of_thousands_of_digits_skips_its_message():
    """int() of 4,301 digits raised: the reader, and the server with it, ended."""
    data = b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n{}" + framed(message(1))
    assert read_all(data)[0] == [1]


def test_bytes_read_ahead_are_read_again_in_linear_time():
    """A length far too long took in thousands of messages after it, given back and read again each a copy of the
    rest: 5.2 s for 80,000."""
    import time

    rest = b"".join(framed(message(i)) for i in range(2, 40_002))
    data = framed(message(1), len(message(1)) + len(rest) - 20) + rest
    t0 = time.perf_counter()
    ids, _ = read_all(data)
    assert time.perf_counter() - t0 < 3.0 and ids[0] == 1 and len(ids) >= 39_990
