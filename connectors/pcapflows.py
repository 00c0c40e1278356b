"""Packet captures → flows through the real exporter chain, on loopback only.

softflowd reads the pcap and exports IPFIX over UDP to 127.0.0.1, nfcapd
collects it into files, nfdump prints them and :mod:`silkwatch.connectors.flowtext.nfdump`
parses the text. Using the real tools (rather than a Python pcap decoder)
means the flows look exactly like what a site's NetFlow probe would send,
including its quirks; the pitfalls measured in ``data/real/README.md`` shape
every step:

* ``-c none``: without it softflowd 1.1.0 blocks in ``accept()`` on its control
  socket and never reads the file.
* ``-v 10 -A milli``: IPFIX with absolute millisecond times; other settings
  give times from the exporter's clock, not the capture's.
* In pcap-read mode softflowd applies no active/idle timeouts: a long C2
  session is one flow, and a UDP beacon that reuses its 5-tuple is one flow.
  Periodicity shows only where each callback opens a new connection or port.
* Records are unidirectional; both records of a connection carry the
  connection's start time and duration.
* nfcapd writes into ``nfcapd.current.<pid>`` until it stops, so we wait until
  its socket has drained (``/proc/net/udp`` rx_queue 0), stop it with SIGTERM and
  only then run nfdump. Datagrams the kernel dropped (``drops``) are an error,
  not a silent loss.
* Each run binds its own free port on 127.0.0.1, so runs can go in parallel.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from silkwatch.connectors.flowtext import ReadSummary, ToolMissingError, skip_malformed
from silkwatch.connectors.flowtext.nfdump import read_nfcapd
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.schema import FlowBatch

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
#: how long the collector may take to bind, drain or exit
COLLECTOR_WAIT_S = 10.0
#: softflowd reads a few MB in milliseconds; this only guards against a hang
EXPORTER_TIMEOUT_S = 120.0
#: collector socket buffer; large replays overflow the default one
RECEIVE_BUFFER_BYTES = 8 << 20


class PcapFlowsError(SilkwatchError):
    """The exporter chain failed for one capture (tool error, nothing collected, drops)."""

    reason = "pcap_export"

    def __init__(self, pcap: Path, detail: str) -> None:
        self.pcap = pcap
        super().__init__(f"pcapflows: {pcap}: {detail}")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(name, "softflowd" if name == "softflowd" else "nfdump")
    return path


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _udp_socket_state(port: int) -> tuple[int, int] | None:
    """(rx_queue bytes, drops) of the socket bound to 127.0.0.1:port, or None if unbound."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted:
            return int(fields[4].split(":")[1], 16), int(fields[-1])
    return None


def _wait_for(condition, what: str, pcap: Path) -> None:
    deadline = time.monotonic() + COLLECTOR_WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise PcapFlowsError(pcap, f"timed out waiting for {what}")
        time.sleep(0.02)


def _start_collector(nfdir: Path, port: int, log_path: Path, pcap: Path) -> subprocess.Popen:
    args = [_tool("nfcapd"), "-w", str(nfdir), "-b", LOOPBACK, "-p", str(port), "-t", "3600"]
    args += ["-B", str(RECEIVE_BUFFER_BYTES)]
    with log_path.open("wb") as log:
        collector = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def bound() -> bool:
        if collector.poll() is not None:
            raise PcapFlowsError(pcap, f"nfcapd exited at start, see {log_path}")
        return _udp_socket_state(port) is not None

    _wait_for(bound, f"nfcapd to bind {LOOPBACK}:{port}", pcap)
    return collector


def _stop_collector(collector: subprocess.Popen, port: int, pcap: Path) -> int:
    """Let the socket drain, SIGTERM nfcapd (it closes its file), return the drop count."""
    state = _udp_socket_state(port)
    _wait_for(lambda: (_udp_socket_state(port) or (0, 0))[0] == 0, "nfcapd to drain", pcap)
    drops = (_udp_socket_state(port) or state or (0, 0))[1]
    collector.send_signal(signal.SIGTERM)
    try:
        collector.wait(timeout=COLLECTOR_WAIT_S)
    except subprocess.TimeoutExpired:
        collector.kill()
        raise PcapFlowsError(pcap, "nfcapd did not stop on SIGTERM") from None
    return drops


def _export(pcap: Path, port: int, workdir: Path) -> str:
    """Run softflowd over the capture; its log text (statistics at the end)."""
    args = [_tool("softflowd"), "-r", str(pcap), "-n", f"{LOOPBACK}:{port}", "-v", "10"]
    args += ["-A", "milli", "-c", "none", "-p", str(workdir / "softflowd.pid")]
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=EXPORTER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise PcapFlowsError(pcap, f"softflowd ran over {EXPORTER_TIMEOUT_S:.0f} s") from None
    output = done.stdout + done.stderr
    (workdir / "softflowd.log").write_text(output)
    if done.returncode != 0:
        last = output.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise PcapFlowsError(pcap, f"softflowd failed: {last[0]}")
    return output


def _exported_records(softflowd_log: str) -> int | None:
    """softflowd's "Flows exported: 261 (521 records)" → 521."""
    for line in softflowd_log.splitlines():
        if "Flows exported" in line and "records" in line:
            return int(line.split("(")[1].split()[0])
    return None


def pcap_to_flows(pcap: Path, workdir: Path, *, rows: int = 65_536) -> Iterator[FlowBatch]:
    """Batches of the unidirectional flows softflowd makes of a capture (pcap or pcapng).

    :param pcap: the capture file; link types softflowd reads (Ethernet, Linux SLL)
    :param workdir: an empty folder for the collector's files and the tools' logs
    :param rows: most flows per batch. Default - 65,536
    """
    pcap = Path(pcap)
    if not pcap.is_file():
        raise PcapFlowsError(pcap, "no such file")
    nfdir = workdir / "nf"
    nfdir.mkdir(parents=True, exist_ok=True)
    port = _free_udp_port()
    collector = _start_collector(nfdir, port, workdir / "nfcapd.log", pcap)
    try:
        softflowd_log = _export(pcap, port, workdir)
    finally:
        drops = _stop_collector(collector, port, pcap)
    if drops:
        raise PcapFlowsError(pcap, f"the kernel dropped {drops} IPFIX datagrams to nfcapd")
    expected = _exported_records(softflowd_log)
    files = [f for f in nfdir.iterdir() if f.name.startswith("nfcapd.") and f.stat().st_size]
    if not files:
        if expected == 0:
            return
        raise PcapFlowsError(pcap, f"nfcapd wrote no file in {nfdir} (softflowd: {expected})")
    summary = ReadSummary(str(pcap), "nfcapd")
    yield from read_nfcapd(nfdir, rows=rows, summary=summary, on_error=skip_malformed)
    logger.info(
        "pcapflows pcap=%s port=%d exported_records=%s flows=%d",
        pcap.name,
        port,
        expected,
        summary.flows,
    )
    if expected is not None and summary.flows != expected:
        raise PcapFlowsError(
            pcap, f"softflowd exported {expected} records but nfdump read {summary.flows}"
        )
