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
