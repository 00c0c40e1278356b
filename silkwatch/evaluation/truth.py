"""What the detector should find in each file of ``../shared/data/real/``, as data.

Transcribed from ``data/real/README.md`` (publisher labels and descriptions,
plus the team's *observed* readings with tshark/nfdump). Each expected finding
says whether flow records *can* show it at all: a single short connection, a
beacon that lives inside one TLS session's packets, or a handshake of one UDP
5-tuple leaves nothing periodic or voluminous in flows, and scoring the
detector on those would measure the input, not the detector.

``visible`` values:

* ``yes``: flows show it (repeated connections, or a long low-rate session);
* ``weak``: flows show something, but too short or too small for a baseline;
* ``no``: flow data cannot show it (the row says why).

Recall is reported over ``yes`` rows, and separately over all rows.
"""

from __future__ import annotations

from dataclasses import dataclass

VISIBILITY = ("yes", "weak", "no")
ROLES = ("malicious", "benign", "benign-day", "other")


@dataclass(frozen=True)
class Finding:
    """One malicious channel: an infected host talking to its controller.

    :param what: beacon, c2, reverse-shell, dns-tunnel, dns-exfil, doh-tunnel
    :param sip: the infected (client) host
    :param dip: the controller / resolver it talks to
    :param dport: the service port on ``dip``
    :param proto: IP protocol number
    :param visible: ``yes``, ``weak`` or ``no`` (see the module docstring)
    :param why: what flows show of it, or why they cannot
    """

    what: str
    sip: str
    dip: str
    dport: int
    proto: int
    visible: str
    why: str


@dataclass(frozen=True)
class Capture:
    """One data file and its truth.

    :param path: relative to ``data/real/``
    :param role: ``malicious`` (has findings), ``benign`` (no alert allowed),
        ``benign-day`` (a 24 h benign day: false alerts per 1,000 hosts per day),
        ``other`` (neither beacon nor exfiltration: any alert is reported, not scored)
    :param findings: the malicious channels
    :param traps: benign traffic known to look suspicious (for the table's notes)
    """

    path: str
    role: str
    findings: tuple[Finding, ...] = ()
    traps: tuple[str, ...] = ()
    note: str = ""

    @property
    def hosts(self) -> set[str]:
        """Infected hosts: an alert whose source is one of them is right at host level."""
        return {f.sip for f in self.findings}

    @property
    def controllers(self) -> set[str]:
        """Controllers/resolvers of the findings (alerts on replies come from them)."""
        return {f.dip for f in self.findings}


TCP, UDP = 6, 17


def _lab_tunnel(visible: str, why: str) -> Finding:
    """The dmachard lab: client 192.168.1.17 tunnelling through resolver 192.168.1.210:53."""
    return Finding("dns-tunnel", "192.168.1.17", "192.168.1.210", 53, UDP, visible, why)


CAPTURES: tuple[Capture, ...] = (
    Capture(
        "pcap/beacon/slips-test-cc-capture-2.pcap",
        "malicious",
        (
            Finding(
                "beacon",
                "147.32.80.37",
                "141.193.213.20",
                443,
                TCP,
                "yes",
                "22 HTTPS connections, one per callback, gaps 2.28–3.80 s (mean 3.06 s)",
            ),
        ),
        traps=("DNS 147.32.80.37 → 147.32.80.9:53 (238 flows, one per callback: periodic too)",),
    ),
    Capture(
        "pcap/c2/c2lab-sliver-mtls-executing.pcap",
        "malicious",
        (
            Finding(
                "c2",
                "10.2.1.5",
                "13.91.62.40",
                443,
                TCP,
                "yes",
                "Sliver session mode: one 18.5 min TLS session (416 pkts / 36.7 KB out), "
                "low rate and low bytes/packet; no flow-level periodicity (beacon is inside it)",
            ),
        ),
        traps=(
            "Azure WireServer 168.63.129.16 (845 flows, burst every ~6 s)",
            "IMDS 169.254.169.254",
            "admin SSH 156.214.155.185 ↔ 10.2.1.5:22",
            "scanner 205.210.31.75 → :22",
        ),
    ),
    Capture(
        "pcap/c2/c2lab-reverse-shell-7777.pcap",
        "malicious",
        (
            Finding(
                "reverse-shell",
                "10.2.1.5",
                "13.91.62.40",
                7777,
                TCP,
                "no",
                "one 9 s connection: nothing repeats and the volume is tiny",
            ),
        ),
        traps=("Azure agent traffic", "operator SSH"),
    ),
    Capture(
        "pcap/c2/chrissanders-cryptowall4_c2.pcapng",
        "malicious",
        (
            Finding(
                "c2",
                "192.168.122.145",
                "184.170.149.44",
                80,
                TCP,
                "no",
                "3 HTTP connections in 46 s: too few callbacks for any timing test; "
                "the 129 KB is a download (inbound), not exfiltration",
            ),
        ),
    ),
    Capture(
        "pcap/dns-tunnel/dmachard-dnscat2.pcap",
        "malicious",
        (
            _lab_tunnel(
                "yes",
                "12 queries at 1.01 s ± 0.002 s, each its own source port: a DNS beacon",
            ),
        ),
    ),
    Capture(
        "pcap/dns-tunnel/dmachard-iodine.pcap",
        "malicious",
        (
            _lab_tunnel(
                "weak",
                "handshake only, one UDP 5-tuple in 0.09 s: one flow each way; nothing "
                "repeats, only the DNS packet sizes (bytes/packet to :53) show",
            ),
        ),
    ),
    Capture(
        "pcap/dns-tunnel/dmachard-dns2tcp.pcap",
        "malicious",
        (
            _lab_tunnel(
                "weak",
                "26 packets in 23 ms on one UDP 5-tuple: one flow each way; only the DNS "
                "packet sizes show",
            ),
        ),
    ),
    Capture(
        "pcap/dns-tunnel/dmachard-dnsextrator.pcap",
        "malicious",
        (
            Finding(
                "dns-exfil",
                "192.168.1.102",
                "192.168.1.210",
                53,
                UDP,
                "weak",
                "14 queries (3.9 KB, ~276 B/query) within 0.1 s: large DNS queries, "
                "but no history to compare the volume with",
            ),
        ),
    ),
    Capture(
        "pcap/dns-tunnel/dmachard-sods.pcap",
        "malicious",
        (
            _lab_tunnel(
                "yes",
                "487 query flows (one per source port) over 92 s",
            ),
        ),
    ),
    Capture(
        "pcap/dns-tunnel/doh-tunnel-dns2tcp-txt-compressed-dns.pcap",
        "malicious",
        (
            Finding(
                "doh-tunnel",
                "192.168.0.30",
                "192.168.0.10",
                443,
                TCP,
                "weak",
                "DoH: 97 KB up / 39 KB down in 5.6 s of a 10 s capture; upload-heavy HTTPS, "
                "no baseline",
            ),
            Finding(
                "dns-tunnel",
                "192.168.0.10",
                "192.168.0.20",
                53,
                UDP,
                "weak",
                "the DoH server relaying the tunnel to the dns2tcp server, 10 s only",
            ),
        ),
        traps=("loopback 127.0.0.1 → :8053 inside the DoH server",),
    ),
    Capture("pcap/benign/chrissanders-http_google.pcapng", "benign"),
    Capture("pcap/benign/chrissanders-dns_query_response.pcapng", "benign"),
    Capture(
        "flows/stratosphere-001-njrat-labeled-conn.log",
        "malicious",
        (
            Finding(
                "beacon",
                "192.168.1.115",
                "41.108.179.197",
                1177,
                TCP,
                "yes",
                "237 unanswered SYNs (S0), njRAT reconnect attempts, median gap 9.0 s",
            ),
        ),
        note="7 further Malicious-labelled HTTPS flows of the same host (2 to 216.58.201.70, "
        "2 to 54.247.115.15, 2 to 85.31.204.81, 1 to 52.57.198.59): count at host level",
    ),
    Capture(
        "flows/stratosphere-008-mixed-conn.log.labeled",
        "benign-day",
        note="victim 147.32.81.167; 4,201 inbound External-Attack-to-Device flows, "
        "no outbound beacon or exfiltration",
    ),
    Capture(
        "flows/stratosphere-010-mixed-conn.log.labeled",
        "benign-day",
        note="victim 147.32.83.234; 3,373 inbound attack flows, no beacon or exfiltration",
    ),
    Capture(
        "flows/stratosphere-012-mixed-conn.log.labeled",
        "benign-day",
        note="victim 147.32.83.161; 3,028 inbound attack flows, no beacon or exfiltration",
    ),
    Capture(
        "flows/ctu-normal-7-2013-13-07.binetflow",
        "benign",
        traps=("BitTorrent: 148 MB and 110 MB flows on port 51413",),
        note="host 10.0.0.46, CTU-Normal-7",
    ),
    Capture(
        "flows/ctu-normal-2013-10-21_capture-1.binetflow",
        "benign",
        note="host 147.32.83.53, about 3 h, no SrcBytes column",
    ),
    Capture(
        "flows/slips-test1-portscan.nfdump",
        "other",
        note="147.32.80.119 port-scanning 147.32.82.62: neither beacon nor exfiltration",
    ),
)


def by_path() -> dict[str, Capture]:
    """Captures keyed by their path under ``data/real/``."""
    return {capture.path: capture for capture in CAPTURES}
