"""Real exporters and an independent collector for the NetFlow tests.

``softflowd_export`` runs softflowd over a pcap and captures the datagrams it
sends to 127.0.0.1; ``nfdump_records`` replays datagrams into nfcapd and reads
them back with ``nfdump -o json``. Replaying the very datagrams we decode makes
both sides see the same export.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from silkwatch.detectors.schema import ip_strings

#: a flow as both sides are compared: times in ms, addresses as text
Row = tuple[int, int, str, str, int, int, int, int, int, int]


def free_udp_port() -> int:
    """A UDP port nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def softflowd_export(pcap: Path, version: str, *extra: str) -> list[bytes]:
    """The datagrams softflowd sends for ``pcap`` as NetFlow ``version`` (5, 9 or 10)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        subprocess.run(
            ["softflowd", "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", version, "-d",
             *extra],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        sock.settimeout(1.0)
        datagrams = []
        try:
            while True:
                datagrams.append(sock.recv(65535))
        except TimeoutError:
            pass
    return datagrams


def nfdump_records(datagrams: list[bytes], tmp: Path) -> list[dict]:
    """What nfcapd stores and ``nfdump -o json`` prints for these datagrams."""
    folder = tmp / "nfcapd"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    daemon = subprocess.Popen(
        ["nfcapd", "-w", str(folder), "-p", str(port), "-b", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # nfcapd binds after start-up
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for datagram in datagrams:
                sock.sendto(datagram, ("127.0.0.1", port))
                time.sleep(0.001)
        time.sleep(0.5)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    output = subprocess.run(
        ["nfdump", "-R", str(folder), "-o", "json"],
        capture_output=True, text=True, check=True, env={**os.environ, "TZ": "UTC"},
    ).stdout  # fmt: skip
    return json.loads(output) if output.strip() else []


def _ms(text: str) -> int:
    from datetime import UTC, datetime

    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000 + 0.5)


_FLAGS = "CEUAPRSF"


def nfdump_rows(records: list[dict]) -> list[Row]:
    """nfdump's JSON records as comparable rows."""
    rows = []
    for r in records:
        flags = sum(1 << (7 - i) for i, c in enumerate(r.get("tcp_flags", "........")) if c != ".")
        sip = r.get("src4_addr") or r.get("src6_addr")
        dip = r.get("dst4_addr") or r.get("dst6_addr")
        dport = r.get("dst_port", 0)
        if r["proto"] in (1, 58):
            dport = r.get("icmp_type", 0) * 256 + r.get("icmp_code", 0)
        rows.append(
            (_ms(r["first"]), _ms(r["last"]), sip, dip, r.get("src_port", 0) if r["proto"]
             not in (1, 58) else 0, dport, r["proto"], r["in_packets"], r["in_bytes"], flags)
        )  # fmt: skip
    return sorted(rows)


def batch_rows(batch) -> list[Row]:
    """Our flows as comparable rows."""
    sip, dip = (ip_strings(batch[c], batch["ipv6"]) for c in ("sip", "dip"))
    rows = []
    for i in range(len(batch)):
        start = int(batch["stime_ms"][i])
        rows.append(
            (start, start + int(batch["elapsed_ms"][i]), sip[i], dip[i], int(batch["sport"][i]),
             int(batch["dport"][i]), int(batch["proto"][i]), int(batch["packets"][i]),
             int(batch["bytes"][i]), int(batch["flags"][i]))
        )  # fmt: skip
    return sorted(rows)
