"""How the stub reads request bodies and records whether each arrived whole — the evidence
for a push whose last bytes never came (issue 13)."""

from __future__ import annotations

import io

from lab.stub.exchange import BodyTimings, iter_request_body


def read_timed(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, object]]:
    timings = BodyTimings()
    body = b"".join(timings.timed("rid-1", "/push", iter_request_body(io.BufferedReader(io.BytesIO(raw)), headers)))
    return body, timings.of("rid-1")[0]


def test_a_chunked_body_with_its_last_chunk_is_recorded_complete():
    body, record = read_timed(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", {"transfer-encoding": "chunked"})
    assert body == b"hello world" and record["complete"] is True and record["bytes"] == 11


def test_a_chunked_body_cut_before_its_last_chunk_is_recorded_incomplete():
    body, record = read_timed(b"5\r\nhello\r\n6\r\n wor", {"transfer-encoding": "chunked"})
    assert body == b"hello wor" and record["complete"] is False


def test_a_body_shorter_than_its_content_length_is_recorded_incomplete():
    _, short = read_timed(b"hello", {"content-length": "11"})
    _, whole = read_timed(b"hello world", {"content-length": "11"})
    assert short["complete"] is False and whole["complete"] is True


def test_a_body_without_a_request_id_is_read_without_a_record():
    timings = BodyTimings()
    reader = io.BufferedReader(io.BytesIO(b"5\r\nhel"))
    assert b"".join(timings.timed(None, "/x", iter_request_body(reader, {"transfer-encoding": "chunked"}))) == b"hel"
