"""Docker's multiplexed stdout/stderr framing, parsed incrementally (runtime/streams.py FrameDemuxer), and the
checks the stream calls make before they reach an engine."""

from __future__ import annotations

import itertools
import struct
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput, Unavailable
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.streams import STDERR, STDOUT, ContainerStreams, FrameDemuxer, MalformedStream


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_whole_frames_come_out_per_stream_in_order() -> None:
    demuxer = FrameDemuxer()
    data = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"more\n")
    assert demuxer.feed(data) == [(STDOUT, b"out\n"), (STDERR, b"err\n"), (STDOUT, b"more\n")]
    assert not demuxer.pending


def test_adjacent_frames_of_one_stream_are_joined() -> None:
    demuxer = FrameDemuxer()
    data = frame(1, b"a") + frame(1, b"b") + frame(2, b"c") + frame(2, b"d") + frame(1, b"e")
    assert demuxer.feed(data) == [(STDOUT, b"ab"), (STDERR, b"cd"), (STDOUT, b"e")]


def test_a_header_split_across_reads_is_reassembled() -> None:
    demuxer = FrameDemuxer()
    data = frame(2, b"hello")
    assert demuxer.feed(data[:3]) == []
    assert demuxer.pending
    assert demuxer.feed(data[3:7]) == []
    assert demuxer.feed(data[7:]) == [(STDERR, b"hello")]
    assert not demuxer.pending


def test_a_payload_is_returned_as_it_arrives() -> None:
    demuxer = FrameDemuxer()
    data = frame(1, b"0123456789")
    assert demuxer.feed(data[:12]) == [(STDOUT, b"0123")]
    assert demuxer.pending
    assert demuxer.feed(data[12:]) == [(STDOUT, b"456789")]
    assert not demuxer.pending


def test_empty_frames_are_skipped_and_stdin_and_system_error_streams_are_mapped() -> None:
    demuxer = FrameDemuxer()
    data = frame(1, b"") + frame(0, b"in") + frame(3, b"engine says no") + frame(2, b"")
    assert demuxer.feed(data) == [(STDOUT, b"in"), (STDERR, b"engine says no")]


def test_a_big_frame_is_one_piece() -> None:
    payload = bytes(range(256)) * 1024
    assert FrameDemuxer().feed(frame(1, payload)) == [(STDOUT, payload)]


NOT_HEADERS = [b"\x07\x00\x00\x00\x00\x00\x00\x01", b"\x01\x00\x05\x00\x00\x00\x00\x01", b"hello, w"]


@pytest.mark.parametrize("header", NOT_HEADERS)
def test_bytes_that_are_not_frames_are_refused(header: bytes) -> None:
    with pytest.raises(MalformedStream, match="not a multiplexed stream"):
        FrameDemuxer().feed(header + b"x")


@given(
    frames=st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=40)), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=10),
)
def test_any_split_gives_the_same_bytes_per_stream(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    data = b"".join(frame(stream, payload) for stream, payload in frames)
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    demuxer = FrameDemuxer()
    pieces = [piece for start, end in itertools.pairwise(bounds) for piece in demuxer.feed(data[start:end])]
    assert not demuxer.pending
    for number, name in ((1, STDOUT), (2, STDERR)):
        want = b"".join(payload for stream, payload in frames if stream == number)
        assert b"".join(chunk for stream, chunk in pieces if stream == name) == want
    assert all(chunk for _, chunk in pieces)  # never an empty piece
    # Order across streams is kept: the pieces, concatenated, are the payloads in frame order.
    assert b"".join(chunk for _, chunk in pieces) == b"".join(payload for _, payload in frames)


def test_checks_come_before_the_engine() -> None:
    streams = ContainerStreams(DockerEngine("unix:///nowhere/docker.sock", timeout=1))
    stop = threading.Event()
    with pytest.raises(InvalidInput, match="cmd must be a non-empty list"):
        streams.exec_run("web-1", [])
    with pytest.raises(InvalidInput, match="not a container id or name"):
        streams.exec_run("../../info", ["true"])
    with pytest.raises(InvalidInput, match="not a container id or name"):
        streams.logs("", stop=stop)
    with pytest.raises(InvalidInput, match="tail must be an integer >= 0"):
        streams.logs("web-1", tail=-1, stop=stop)
    with pytest.raises(Unavailable, match="not reachable"):
        streams.logs("web-1", stop=stop)
    with pytest.raises(Unavailable, match="not reachable"):
        streams.exec_run("web-1", ["true"])
