"""The NAT rules that send the services address's ports 53 and 80 to the agent's DNS and metadata (pure half)."""

from __future__ import annotations

from corral.model.network import DNS_LISTEN_PORT, HELD_HOST_PORTS, METADATA_LISTEN_PORT, SERVICES_ADDRESS
from corral.network.services_nat import CHAIN, chain_rules, jump, restore_input


def test_the_chain_rewrites_only_the_services_address_ports_53_and_80() -> None:
    rules = chain_rules()
    assert rules[0] == f"-N {CHAIN}"
    assert all(f"-d {SERVICES_ADDRESS}/32" in rule for rule in rules[1:])
    targets = {(rule.split("--dport ")[1].split()[0], rule.split("--to-destination ")[1]) for rule in rules[1:]}
    assert targets == {
        ("53", f"{SERVICES_ADDRESS}:{DNS_LISTEN_PORT}"),
        ("80", f"{SERVICES_ADDRESS}:{METADATA_LISTEN_PORT}"),
    }
    assert {rule.split("-p ")[1].split()[0] for rule in rules if "--dport 53" in rule} == {"udp", "tcp"}


def test_the_listen_ports_are_held_and_53_and_80_are_not() -> None:
    assert {(DNS_LISTEN_PORT, "udp"), (DNS_LISTEN_PORT, "tcp"), (METADATA_LISTEN_PORT, "tcp")} <= HELD_HOST_PORTS.keys()
    assert not {(53, "udp"), (53, "tcp"), (80, "tcp")} & HELD_HOST_PORTS.keys()


def test_restore_input_declares_the_chain_in_the_nat_table() -> None:
    text = restore_input(chain_rules("10.1.2.3", 1053, 1080))
    lines = text.splitlines()
    assert lines[:2] == ["*nat", f":{CHAIN} - [0:0]"] and lines[-1] == "COMMIT"
    assert "-A CORRAL-SERVICES -d 10.1.2.3/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.2.3:1080" in lines
    assert jump("OUTPUT", "10.1.2.3") == ("OUTPUT", "-d", "10.1.2.3/32", "-j", CHAIN)
