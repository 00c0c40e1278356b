"""Read the test cases of logstash-codec-netflow's ``netflow_spec.rb`` as data.

Each ``context`` names the payload files it sends, in order, and the values its
decoded events must have: ``expect(decode[i].get("[netflow][name]")).to eq(v)``
lines and the JSON events of its ``json_events`` blocks. Only the element names
that map to a flow-batch column are kept (``FIELD_COLUMNS``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

LOGSTASH = Path(__file__).resolve().parents[3] / "shared" / "data" / "netflow" / "logstash"
SPEC = LOGSTASH / "netflow_spec.rb"

#: Logstash's element names (v9 and IPFIX spellings) → flow-batch column
FIELD_COLUMNS = {
    **dict.fromkeys(["ipv4_src_addr", "sourceIPv4Address"], "sip"),
    **dict.fromkeys(["ipv6_src_addr", "sourceIPv6Address"], "sip"),
    **dict.fromkeys(["ipv4_dst_addr", "destinationIPv4Address"], "dip"),
    **dict.fromkeys(["ipv6_dst_addr", "destinationIPv6Address"], "dip"),
    **dict.fromkeys(["l4_src_port", "sourceTransportPort"], "sport"),
    **dict.fromkeys(["l4_dst_port", "destinationTransportPort"], "dport"),
    **dict.fromkeys(["in_bytes", "octetDeltaCount"], "bytes"),
    **dict.fromkeys(["in_pkts", "packetDeltaCount"], "packets"),
    **dict.fromkeys(["protocol", "protocolIdentifier"], "proto"),
    **dict.fromkeys(["tcp_flags", "tcpControlBits"], "flags"),
    **dict.fromkeys(["input_snmp", "ingressInterface"], "input"),
    **dict.fromkeys(["output_snmp", "egressInterface"], "output"),
    **dict.fromkeys(["first_switched", "flowStartMilliseconds", "flowStartSeconds"], "stime_ms"),
    **dict.fromkeys(["last_switched", "flowEndMilliseconds", "flowEndSeconds"], "etime_ms"),
}  # fmt: skip


@dataclass
class Case:
    """One ``context`` of the spec."""

    name: str
    files: list[str]
    size: int | None = None  # decode.size: flow and options events
    events: dict[int, dict[str, object]] = field(default_factory=dict)


def _value(column: str, raw: object) -> object:
    """A spec value in the unit of our column (times as ms since the epoch)."""
    if column in ("stime_ms", "etime_ms"):
        if isinstance(raw, int):
            return raw * 1000
        text = str(raw).replace("Z", "+00:00")
        whole, _, rest = text.partition(".")
        fraction = rest[:3] if rest else "000"
        stamp = datetime.fromisoformat(whole + "+00:00" if "+" not in whole else whole)
        return int(stamp.timestamp()) * 1000 + int(fraction.ljust(3, "0")[:3])
    return raw


def _expected(name: str, raw: object, into: dict[str, object]) -> None:
    column = FIELD_COLUMNS.get(name)
    if column is not None:
        into[column] = _value(column, raw)


def read_cases() -> list[Case]:
    """Every context of the spec with at least one payload file."""
    text = SPEC.read_text()
    cases = []
    chunks = re.split(r'\n  context "([^"]+)" do\n', text)
    for name, body in zip(chunks[1::2], chunks[2::2], strict=True):
        files = re.findall(r'File\.dirname\(__FILE__\), "([^"]+\.dat)"', body)
        if not files:
            continue
        case = Case(name.strip(), files)
        size = re.search(r"expect\(decode\.size\)\.to eq\((\d+)\)", body)
        case.size = int(size[1]) if size else None
        blocks = re.findall(r"<<-END\n(.*?)\n\s*END\n", body, re.S)
        # which decoded event each JSON block describes: decode[i] ... json_events[j]
        pairs = re.findall(
            r"decode\[(\d+)\]\.to_json\)\)\.to eq\(JSON\.parse\(json_events\[(\d+)\]", body
        )
        event_of = {int(j): int(i) for i, j in pairs}
        for block_index, block in enumerate(blocks):
            index = event_of.get(block_index, block_index)
            event = json.loads(block.replace("#{micros}", ""))
            for key, raw in event.get("netflow", {}).items():
                _expected(key, raw, case.events.setdefault(index, {}))
        for index, key, raw in re.findall(
            r'expect\(decode\[(\d+)\]\.get\("\[netflow\]\[(\w+)\]"\)\)\.to eq\((.*)\)\s*$',
            body,
            re.M,
        ):
            value: object = raw.strip("'\"")
            if raw.isdigit():
                value = int(raw)
            _expected(key, value, case.events.setdefault(int(index), {}))
        case.events = {i: e for i, e in case.events.items() if e}
        cases.append(case)
    return cases
