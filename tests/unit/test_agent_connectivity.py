"""The overlay connectivity check: probe bookkeeping (pure, property-tested) and the UDP echo on loopback."""

from __future__ import annotations

import asyncio
import socket

from hypothesis import given
from hypothesis import strategies as st

from corral.agent.connectivity import (
    EchoResponder,
    PeerRecord,
    forget_peers,
    probe_peer,
    record_probe,
    report,
)

probes = st.lists(st.tuples(st.sampled_from(["h1", "h2"]), st.booleans()), max_size=30)


@given(probes)
def test_reported_status_is_the_last_counted_result_and_since_marks_its_start(seq: list[tuple[str, bool]]) -> None:
    peers: dict[str, PeerRecord] = {"h1": PeerRecord(0.0), "h2": PeerRecord(0.0)}
    now = 100.0  # past the grace of a new peer
    last: dict[str, bool] = {}
    flips: dict[str, float] = {}
    for peer, ok in seq:
        now += 1.0
        peers, changed = record_probe(peers, peer, ok, "" if ok else "lost", now)
        assert changed == (last.get(peer) != ok)
        if changed:
            flips[peer] = now
        last[peer] = ok
    wire = report(peers)
    assert set(wire) == set(last)
    for peer, ok in last.items():
        assert wire[peer]["ok"] is ok
        assert wire[peer]["since"] == flips[peer]
        assert (wire[peer]["error"] == "") is ok


def test_a_new_peer_failing_within_its_grace_is_not_reported_but_success_is() -> None:
    peers = forget_peers({}, ["h1"], now=10.0)
    peers, changed = record_probe(peers, "h1", False, "no answer", 12.0, grace=15.0)
    assert not changed and report(peers) == {}
    peers, changed = record_probe(peers, "h1", False, "no answer", 26.0, grace=15.0)
    assert changed and report(peers)["h1"] == {"ok": False, "since": 26.0, "error": "no answer"}
    peers, changed = record_probe(peers, "h1", True, "", 27.0, grace=15.0)
    assert changed and report(peers)["h1"]["ok"] is True


def test_forget_drops_old_peers_and_keeps_known_ones() -> None:
    peers, _ = record_probe(forget_peers({}, ["a", "b"], 0.0), "a", True, "", 1.0)
    kept = forget_peers(peers, ["a", "c"], 50.0)
    assert set(kept) == {"a", "c"} and kept["a"] == peers["a"] and kept["c"].first_seen == 50.0


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_probe_is_answered_by_a_responder_and_fails_without_one() -> None:
    async def scenario() -> tuple[tuple[bool, str], tuple[bool, str]]:
        port = _free_udp_port()
        responder = EchoResponder("127.0.0.1", port)
        await responder.ensure()
        try:
            answered = await probe_peer("127.0.0.1", port=port, attempts=3, attempt_seconds=0.5)
        finally:
            responder.close()
        silent = await probe_peer("127.0.0.1", port=port, attempts=2, attempt_seconds=0.1)
        return answered, silent

    answered, silent = asyncio.run(scenario())
    assert answered == (True, "")
    assert silent[0] is False and "127.0.0.1" in silent[1]
