"""Site awareness: internal networks, broadcast, orientation by ports, suppression rules."""

from __future__ import annotations

import pytest

from silkwatch.detectors.alerts import Alert
from silkwatch.detectors.schema import parse_ip
from silkwatch.detectors.site import (
    SiteConfig,
    Suppression,
    SuppressionError,
    is_broadcast,
    is_outbound,
    parse_suppressions,
    suppress,
)


def _ip(text: str) -> bytes:
    return parse_ip(text)[0]


@pytest.mark.parametrize(
    ("sip", "dip", "site", "expected"),
    [
        ("10.0.0.1", "203.0.113.9", SiteConfig(), True),  # out to the Internet
        ("192.168.40.92", "10.0.40.23", SiteConfig(), False),  # internal to internal
        ("192.168.40.92", "10.0.40.23", SiteConfig(score_internal=True), True),
        ("100.64.1.2", "172.16.5.5", SiteConfig(), False),  # CGNAT and RFC 1918 are internal
        ("fd00::5", "fe80::1", SiteConfig(), False),  # ULA to link-local
        ("203.0.113.9", "10.0.0.1", SiteConfig(score_internal=True), False),  # inbound
        ("147.32.83.53", "147.32.80.88", SiteConfig(), False),  # public, one /16
        ("147.32.83.53", "147.32.80.88", SiteConfig(site_prefix_v4=24), True),
        ("147.32.80.37", "141.193.213.20", SiteConfig(), True),  # public campus host out
        ("192.0.2.1", "10.0.0.1", SiteConfig(internal_networks=("192.0.2.0/24",)), True),
        ("10.0.0.1", "255.255.255.255", SiteConfig(score_internal=True), False),
        ("10.0.0.1", "224.0.0.251", SiteConfig(score_internal=True), False),
        ("2001:db8::1", "ff05::2", SiteConfig(), False),
        ("2001:db8::1", "2001:db9::1", SiteConfig(), True),  # different /48s
        ("2001:db8::1", "2001:db8:0:1::1", SiteConfig(), False),  # one /48
    ],
)
def test_is_outbound(sip, dip, site, expected):
    assert is_outbound(_ip(sip), _ip(dip), site) is expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [("255.255.255.255", True), ("0.0.0.0", True), ("224.0.0.1", True),
     ("239.255.255.250", True), ("240.0.0.1", False), ("192.168.40.255", False),
     ("ff02::fb", True), ("::", True), ("2001:db8::ff", False)],
)  # fmt: skip
def test_is_broadcast(address, expected):
    assert is_broadcast(_ip(address)) is expected


ALERT = Alert("beacon", "high", 0.9, "192.168.40.20", "10.0.40.54", 5723, 6, 0, 1_750_000_000_000)


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ({"dip": "10.0.40.54", "dport": 5723}, True),
        ({"dip": "10.0.40.0/24", "proto": 6, "kind": "beacon"}, True),
        ({"sip": "192.168.40.0/24"}, True),
        ({"sip": "192.168.41.0/24"}, False),
        ({"dport": 5723, "proto": 17}, False),
        ({"kind": "exfil"}, False),
        ({"dport": 5723, "expires": "2025-06-16"}, True),  # the alert (06-15 15:06:40Z) is older
        ({"dport": 5723, "expires": "2025-06-15"}, False),
        ({"dport": 5723, "expires": "2025-06-15T15:06:40"}, False),  # expired at 15:06:40 UTC
        ({"dport": 5723, "expires": "2025-06-15T16:06:41+01:00"}, True),
    ],
)
def test_suppression_matching(rule, matches):
    [parsed] = parse_suppressions([rule])
    assert parsed.matches(ALERT) is matches
    kept, dropped = suppress([ALERT], [parsed])
    assert (len(kept), dropped) == ((0, 1) if matches else (1, 0))


def test_a_rule_on_host_alerts_needs_the_host_address():
    exfil = Alert("exfil", "high", 0.9, "10.0.0.6", None, None, None, 0, 1)
    assert Suppression(dip="10.0.0.0/8").matches(exfil) is False
    assert Suppression(sip="10.0.0.0/8", kind="exfil").matches(exfil) is True


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"dport": 70_000}, "rule 1: dport = 70000: expected a port 0-65535"),
        ({"proto": "tcp"}, "rule 1: proto = 'tcp': expected a protocol number 0-255"),
        ({"dip": "10.0.0.0/33"}, "rule 1: dip = '10.0.0.0/33': expected an address or CIDR"),
        ({"dport": 1, "expires": "soon"}, "rule 1: expires = 'soon': expected a date like"),
        ({"dport": 1, "port": 2}, "rule 1: unknown key(s) ['port']"),
        ({"comment": "all"}, "rule 1: matches everything"),
        ({"kind": 3}, "rule 1: kind = 3: expected a string"),
    ],
)
def test_bad_rules_are_one_clear_error(rule, message):
    with pytest.raises(SuppressionError) as caught:
        parse_suppressions([rule], source="site.toml")
    assert str(caught.value).startswith(f"suppressions site.toml: {message}")
    assert caught.value.reason == "bad_suppression"
