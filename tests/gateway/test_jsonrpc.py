"""JSON-RPC framing: bounded lines, strict message parsing."""

from __future__ import annotations

import asyncio

import pytest

from stockade.gateway import LineReader, Oversized, parse_message
from stockade.gateway._jsonrpc import INVALID_REQUEST, PARSE_ERROR


def read_all(data: bytes, max_bytes: int) -> list[bytes | Oversized]:
    async def go() -> list[bytes | Oversized]:
        r = asyncio.StreamReader()
        r.feed_data(data)
        r.feed_eof()
        lr = LineReader(r, max_bytes)
        out: list[bytes | Oversized] = []
        while (item := await lr.next()) is not None:
            out.append(item)
        return out

    return asyncio.run(go())


@pytest.mark.guarantee("gw-bounded-messages")
def test_an_oversized_line_is_discarded_and_the_next_one_read() -> None:
    items = read_all(b"a" * 200_000 + b"\n{}\n", 1000)
    assert isinstance(items[0], Oversized)
    assert items[0].size == 200_000
    assert items[1] == b"{}"


def test_lines_are_split_and_crlf_trimmed() -> None:
    assert read_all(b"one\r\ntwo\nthree", 100) == [b"one", b"two", b"three"]


@pytest.mark.guarantee("gw-malformed-jsonrpc")
@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"{not json", PARSE_ERROR),
        (b"\xff\xfe", PARSE_ERROR),
        (b"[1,2]", INVALID_REQUEST),
        (b'{"jsonrpc":"1.0","id":1,"method":"x"}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":{"a":1},"method":"x"}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":true,"method":"x"}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":5}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1}', INVALID_REQUEST),
    ],
)
def test_malformed_messages_are_classified(line: bytes, code: int) -> None:
    out = parse_message(line)
    assert isinstance(out, tuple)
    assert out[0] == code


def test_valid_requests_notifications_and_responses_parse() -> None:
    assert isinstance(parse_message(b'{"jsonrpc":"2.0","id":"a","method":"ping"}'), dict)
    assert isinstance(parse_message(b'{"jsonrpc":"2.0","method":"notifications/x"}'), dict)
    assert isinstance(parse_message(b'{"jsonrpc":"2.0","id":3,"result":{}}'), dict)
