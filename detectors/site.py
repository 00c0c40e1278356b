"""Where a pair sits relative to the site: internal networks, broadcast, suppressions.

Beacons, long sessions, strobes and periodic uploads are callbacks *from this
site out to a controller*. Which addresses are "this site" is a site setting
(``[site] internal_networks``, by default the private, shared and link-local
ranges), so that what two internal hosts say to each other (domain
controllers, monitoring agents, SCOM heartbeats, internal web services) is not
scored unless a site asks for it (``score_internal``), and broadcast and
multicast destinations, which no controller can listen on across the
Internet, are never scored at all.

Sites whose hosts have public addresses (a campus, the Stratosphere captures)
fall back on a prefix rule: two public addresses in one ``/site_prefix_v4``
(``/site_prefix_v6``) belong to one organisation.

The suppression rules an analyst writes ("this SCOM server's heartbeat is
fine until the end of the quarter") are matched here too; reading and
re-reading the file they live in is :mod:`silkwatch.connectors.suppressions`' job.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from silkwatch.detectors.alerts import Alert
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.pairs import PairHistory, PairKey

#: RFC 1918, RFC 6598 (carrier-grade NAT), RFC 3927 and RFC 4193 / 4291 (ULA, link-local)
DEFAULT_INTERNAL_NETWORKS: tuple[str, ...] = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
)

_V4_MAPPED = bytes(10) + b"\xff\xff"
_V4_MAPPED_INT = int.from_bytes(_V4_MAPPED + bytes(4), "big")


@dataclass(frozen=True)
class SiteConfig:
    """What the site's own networks are, and whether traffic inside them is scored.

    :param internal_networks: CIDRs of the site (list settings extend the
        defaults; see ``detectors/defaults.toml``). Default - private,
        shared (CGNAT), link-local and ULA ranges
    :param score_internal: score beacons, sessions, strobes and uploads between
        two internal addresses (lateral C2); off because internal services
        are periodic by design. Default - False
    :param site_prefix_v4: two *public* IPv4 addresses in one prefix of this
        length are one organisation (a campus /16). Default - 16
    :param site_prefix_v6: the same for IPv6 (a site's usual allocation). Default - 48
    :param suppressions: path of the site's suppression file (``[[suppress]]``
        rules, :mod:`silkwatch.connectors.suppressions`), which every runner applies to
        its alerts and re-reads when it changes; empty for none. Default - ""
    """

    internal_networks: tuple[str, ...] = DEFAULT_INTERNAL_NETWORKS
    score_internal: bool = False
    site_prefix_v4: int = 16
    site_prefix_v6: int = 48
    suppressions: str = ""


@lru_cache(maxsize=16)
def _ranges(cidrs: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Each CIDR as (network, mask) over 128-bit key addresses (IPv4 mapped)."""
    out = []
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.version == 4:
            value = _V4_MAPPED_INT | int(net.network_address)
            bits = 96 + net.prefixlen
        else:
            value, bits = int(net.network_address), net.prefixlen
        mask = ((1 << bits) - 1) << (128 - bits) if bits else 0
        out.append((value & mask, mask))
    return tuple(out)


def in_networks(raw: bytes, cidrs: tuple[str, ...]) -> bool:
    """True when a 16-byte key address lies in one of ``cidrs``.

    Examples
    --------
    >>> from silkwatch.detectors.schema import parse_ip
    >>> ip = lambda text: parse_ip(text)[0]
    >>> in_networks(ip("10.1.2.3"), ("10.0.0.0/8",)), in_networks(ip("11.0.0.1"), ("10.0.0.0/8",))
    (True, False)
    >>> in_networks(ip("fd00::1"), DEFAULT_INTERNAL_NETWORKS)
    True
    """
    value = int.from_bytes(raw, "big")
    return any(value & mask == net for net, mask in _ranges(cidrs))


def is_internal(raw: bytes, site: SiteConfig) -> bool:
    """True when the address belongs to the site's internal networks.

    Examples
    --------
    >>> from silkwatch.detectors.schema import parse_ip
    >>> [is_internal(parse_ip(a)[0], SiteConfig()) for a in ("192.168.40.20", "8.8.8.8")]
    [True, False]
    """
    return in_networks(raw, site.internal_networks)


def is_broadcast(raw: bytes) -> bool:
    """True for destinations no controller can be: broadcast, multicast, unspecified.

    IPv4 limited broadcast (255.255.255.255), 0.0.0.0, multicast (224/4) and
    IPv6 multicast (ff00::/8) and ``::``. A subnet's directed broadcast
    (192.168.40.255 on a /24) cannot be told from a host without the subnet's
    length; those pairs are internal-to-internal, off by default.

    Examples
    --------
    >>> from silkwatch.detectors.schema import parse_ip
    >>> [is_broadcast(parse_ip(a)[0]) for a in
    ...  ("255.255.255.255", "239.255.255.250", "ff02::fb", "0.0.0.0", "192.0.2.1")]
    [True, True, True, True, False]
    """
    if raw[:12] == _V4_MAPPED:
        first = raw[12]
        return raw[12:] in (b"\xff\xff\xff\xff", bytes(4)) or 224 <= first <= 239
    return raw[0] == 0xFF or raw == bytes(16)


def is_outbound(sip: bytes, dip: bytes, site: SiteConfig) -> bool:
    """True when a pair can be a callback from this site to a controller.

    Never to broadcast or multicast; internal to internal only with
    ``score_internal``; never from the Internet into the site (inbound or a
    reply); between two public addresses only when they are not in one
    ``site_prefix`` (one organisation).

    Examples
    --------
    >>> from silkwatch.detectors.schema import parse_ip
    >>> ip = lambda text: parse_ip(text)[0]
    >>> s = SiteConfig()
    >>> [is_outbound(ip(a), ip(b), s) for a, b in [("10.0.0.1", "203.0.113.9"),
    ...     ("192.168.40.20", "10.0.40.54"), ("93.184.216.34", "10.0.0.1"),
    ...     ("147.32.83.53", "147.32.80.88"), ("147.32.80.37", "141.193.213.20"),
    ...     ("192.168.40.25", "255.255.255.255")]]
    [True, False, False, False, True, False]
    >>> is_outbound(ip("192.168.40.20"), ip("10.0.40.54"), SiteConfig(score_internal=True))
    True
    """
    if is_broadcast(dip):
        return False
    src_in, dst_in = is_internal(sip, site), is_internal(dip, site)
    if dst_in:
        return src_in and site.score_internal
    if src_in:
        return True
    prefix = site.site_prefix_v4 + 96 if sip[:12] == _V4_MAPPED else site.site_prefix_v6
    mask = ((1 << prefix) - 1) << (128 - prefix) if prefix else 0
    return int.from_bytes(sip, "big") & mask != int.from_bytes(dip, "big") & mask


def service_side(src_port: int, dst_port: int) -> str:
    """Which end of a record is the service, from its two ports: "dst", "src" or "".

    The service listens on a well-known port (below 1024) or, between two
    higher ports, the lower one (clients draw ephemeral ports high: 32768+ on
    Linux, 49152+ on Windows). Equal ports say nothing.

    Examples
    --------
    >>> service_side(51234, 443), service_side(443, 51234), service_side(40000, 50000)
    ('dst', 'src', 'src')
    >>> service_side(123, 123)
    ''
    """
    if src_port == dst_port:
        return ""
    return "dst" if dst_port < src_port else "src"


def is_response(key: PairKey, history: PairHistory, pairs: Mapping[PairKey, PairHistory]) -> bool:
    """True when the pair holds a server's answers, so its source is not the initiator.

    Flow records carry one direction each; an alert must name the side that
    opened the conversation. TCP says it first where the records keep their
    initial flags (SiLK's expanded records): a pair whose flows answered SYNs
    with SYN+ACK and never sent a bare SYN is the server's side. Otherwise, when
    the opposite record is in ``pairs``
    (destination → source, to this pair's one source port, from this pair's
    destination port), the side seen first opened it, and on a tie
    (exporters that give both records the connection's start) the side
    whose destination is the service port (:func:`silkwatch.detectors.site.service_side`).
    Without the opposite record, one source port below the destination port
    is a reply
    (:meth:`PairHistory.is_reply`); many source ports towards one port is a
    client opening connections.

    Examples
    --------
    >>> from silkwatch.detectors.pairs import pair_deltas, pair_label
    >>> from silkwatch.detectors.schema import make_batch
    >>> b = make_batch(sip=["198.51.100.7", "147.32.1.1"], dip=["147.32.1.1", "198.51.100.7"],
    ...                sport=[40_000, 50_000], dport=[50_000, 40_000], proto=[6, 6],
    ...                stime_ms=[1_000, 1_020])
    >>> pairs = pair_deltas(b)
    >>> [(pair_label(k), is_response(k, v, pairs)) for k, v in pairs.items()]
    [('147.32.1.1 -> 198.51.100.7:40000/6', True), ('198.51.100.7 -> 147.32.1.1:50000/6', False)]
    >>> b["init_flags"] = [0x12, 0x02]  # the flags say 198.51.100.7 answered a SYN
    >>> pairs = pair_deltas(b)
    >>> [(pair_label(k), is_response(k, v, pairs)) for k, v in pairs.items()]
    [('147.32.1.1 -> 198.51.100.7:40000/6', False), ('198.51.100.7 -> 147.32.1.1:50000/6', True)]
    """
    if history.opened or history.answered:  # TCP's own word: who sent the first SYN
        return history.answered > 0 and history.opened == 0
    if history.sport_lo == history.sport_hi:
        reverse = pairs.get((key[1], key[0], history.sport_lo, key[3]))
        if reverse is not None and reverse.sport_lo == reverse.sport_hi == key[2]:
            mine, theirs = int(history.events[0, 0]), int(reverse.events[0, 0])
            if mine != theirs:
                return mine > theirs
            return service_side(history.sport_lo, key[2]) == "src"
    return history.is_reply(key[2])


def score_outbound_pairs(
    pairs: Mapping[PairKey, PairHistory],
    judge: Callable[[PairKey, PairHistory], Alert | None],
    *,
    protocols: tuple[int, ...],
    site: SiteConfig,
) -> list[Alert]:
    """``judge``'s alerts on the pairs that can be callbacks out of the site, best first.

    The judge runs first (it rejects most pairs on their own numbers), then
    the pair must be outbound (:func:`is_outbound`) and not a response
    (:func:`is_response`), so every pair scorer keeps the same site rules.
    """
    alerts = []
    for key, history in pairs.items():
        if key[3] not in protocols:
            continue
        alert = judge(key, history)
        keep = alert is not None and is_outbound(key[0], key[1], site)
        if keep and not is_response(key, history, pairs):
            alerts.append(alert)
    return sorted(alerts, key=lambda a: (-a.score, a.sip, a.dip, a.dport or 0))


class SuppressionError(SilkwatchError):
    """A suppression rule that cannot be used as written."""

    reason = "bad_suppression"

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"suppressions {source}: {detail}")
        self.source = source


@dataclass(frozen=True)
class Suppression:
    """One analyst rule: alerts matching every given field are dropped until ``expires_ms``.

    A field left as None matches anything; ``sip``/``dip`` are CIDRs (a single
    address is a /32 or /128). ``expires_ms`` is event time (ms since the
    epoch, UTC); None never expires.
    """

    sip: str | None = None
    dip: str | None = None
    dport: int | None = None
    proto: int | None = None
    kind: str | None = None
    expires_ms: int | None = None
    comment: str = ""

    def matches(self, alert: Alert) -> bool:
        """True when the alert is covered by this rule at its own event time.

        Examples
        --------
        >>> a = Alert("beacon", "high", 0.9, "10.0.0.5", "203.0.113.9", 5723, 6, 0, 1_000)
        >>> Suppression(dip="203.0.113.0/24", dport=5723).matches(a)
        True
        >>> Suppression(dip="203.0.113.0/24", kind="exfil").matches(a)
        False
        >>> Suppression(dport=5723, expires_ms=500).matches(a)  # expired before the alert
        False
        """
        if self.expires_ms is not None and alert.last_seen_ms >= self.expires_ms:
            return False
        for wanted, actual in ((self.kind, alert.kind), (self.dport, alert.dport)):
            if wanted is not None and wanted != actual:
                return False
        if self.proto is not None and self.proto != alert.proto:
            return False
        return _address_in(alert.sip, self.sip) and _address_in(alert.dip, self.dip)


def _address_in(address: str | None, cidr: str | None) -> bool:
    if cidr is None:
        return True
    if address is None:
        return False
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr, strict=False)


_RULE_FIELDS = {"sip", "dip", "dport", "proto", "kind", "expires", "comment"}


def parse_suppressions(
    rules: Sequence[dict], *, source: str = "<rules>"
) -> tuple[Suppression, ...]:
    """Rules from parsed records (a TOML ``[[suppress]]`` array); one clear error per bad rule.

    ``expires`` is an ISO date or date-time (UTC when no zone is given); the
    rule stops applying to alerts seen from then on.

    Examples
    --------
    >>> [rule] = parse_suppressions([{"dip": "10.0.40.54", "dport": 5723,
    ...                              "expires": "2026-03-31", "comment": "SCOM"}])
    >>> rule.dip, rule.dport, rule.expires_ms
    ('10.0.40.54', 5723, 1774915200000)
    >>> parse_suppressions([{"dport": "http"}], source="s.toml")
    Traceback (most recent call last):
    ...
    silkwatch.detectors.site.SuppressionError: suppressions s.toml: rule 1: dport = 'http': \
expected a port...
    """
    out = []
    for number, rule in enumerate(rules, 1):
        where = f"rule {number}"
        if not isinstance(rule, dict):
            raise SuppressionError(source, f"{where}: expected a table, got {rule!r}")
        unknown = set(rule) - _RULE_FIELDS
        if unknown:
            raise SuppressionError(
                source, f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_RULE_FIELDS)}"
            )
        if not set(rule) - {"comment", "expires"}:
            raise SuppressionError(source, f"{where}: matches everything; give sip, dip, "
                                   "dport, proto or kind")  # fmt: skip
        for name in ("sip", "dip"):
            if name in rule:
                try:
                    ipaddress.ip_network(rule[name], strict=False)
                except (TypeError, ValueError):
                    raise SuppressionError(
                        source, f"{where}: {name} = {rule[name]!r}: expected an address or CIDR"
                    ) from None
        for name, top in (("dport", 65_535), ("proto", 255)):
            value = rule.get(name)
            if value is not None and (type(value) is not int or not 0 <= value <= top):
                what = "a port 0-65535" if name == "dport" else "a protocol number 0-255"
                raise SuppressionError(source, f"{where}: {name} = {value!r}: expected {what}")
        if "kind" in rule and not isinstance(rule["kind"], str):
            raise SuppressionError(source, f"{where}: kind = {rule['kind']!r}: expected a string")
        out.append(
            Suppression(
                sip=rule.get("sip"),
                dip=rule.get("dip"),
                dport=rule.get("dport"),
                proto=rule.get("proto"),
                kind=rule.get("kind"),
                expires_ms=_expiry_ms(rule.get("expires"), source, where),
                comment=str(rule.get("comment", "")),
            )
        )
    return tuple(out)


def _expiry_ms(value: object, source: str, where: str) -> int | None:
    """An ISO date / date-time (string or TOML value) as ms since the epoch, UTC by default."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise SuppressionError(
                source, f"{where}: expires = {value!r}: expected a date like 2026-03-31"
            ) from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise SuppressionError(source, f"{where}: expires = {value!r}: expected a date")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def suppress(alerts: Iterable[Alert], rules: Sequence[Suppression]) -> tuple[list[Alert], int]:
    """The alerts no rule covers, and how many were dropped.

    Examples
    --------
    >>> a = Alert("beacon", "high", 0.9, "10.0.0.5", "203.0.113.9", 5723, 6, 0, 1_000)
    >>> b = Alert("exfil", "high", 0.9, "10.0.0.6", None, None, None, 0, 1_000)
    >>> kept, dropped = suppress([a, b], parse_suppressions([{"dport": 5723}]))
    >>> [x.kind for x in kept], dropped
    (['exfil'], 1)
    """
    alerts = list(alerts)
    kept = [alert for alert in alerts if not any(rule.matches(alert) for rule in rules)]
    return kept, len(alerts) - len(kept)
