"""``assetdiscovery``: servers found from flows, as a tree of service → server (IPv4 and IPv6).

The rules are FlowPlotter's AssetDiscoveryTree (after *Applied Network
Security Monitoring* and CERT's 2012 flow-analysis report): a host that
*answers* from a service port — TCP with at least 4 packets and the ACK flag,
UDP for DNS, and any GRE/ESP/AH traffic for VPN — is a server of that service.
Per service, a server is kept when it holds at least ``percentage`` % of the
service's bytes (1 % by default, FlowPlotter's), or by ``count`` / ``threshold``
as rwstats would; the numbers come from the shared group-by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from silkwatch.detectors import groupby
from silkwatch.detectors.schema import FlowBatch
from silkwatch.plots.page import Chart, Table
from silkwatch.plots.values import field_labels

ACK = 0x10
TCP, UDP = 6, 17


@dataclass(frozen=True)
class Service:
    """One server kind: which answering flows reveal it, and the value servers are ranked by.

    :param name: the tree's branch label
    :param protocols: IP protocol numbers
    :param ports: source ports of the server's answers; empty means any
    :param min_packets: fewest packets in a flow that counts (0: any)
    :param ack: the flow must carry the ACK flag (an established TCP answer)
    :param rank_by: ``bytes`` or ``packets`` (DNS answers are small: packets)
    """

    name: str
    protocols: tuple[int, ...]
    ports: tuple[int, ...] = ()
    min_packets: int = 4
    ack: bool = True
    rank_by: str = "bytes"

    def matches(self, batch: FlowBatch) -> np.ndarray:
        """Which flows of ``batch`` are this service's server answers."""
        hit = np.isin(batch["proto"], self.protocols)
        if self.ports:
            hit &= np.isin(batch["sport"], self.ports)
        if self.min_packets:
            hit &= batch["packets"] >= self.min_packets
        if self.ack:
            hit &= (batch["flags"] & ACK) != 0
        return hit


SERVICES: tuple[Service, ...] = (
    Service("Web servers", (TCP,), (80, 443, 8080)),
    Service("Mail servers", (TCP,), (25, 465, 110, 995, 143, 993)),
    Service("DNS servers", (UDP,), (53,), min_packets=0, ack=False, rank_by="packets"),
    Service("VPN servers", (47, 50, 51), min_packets=0, ack=False),
    Service("FTP servers", (TCP,), (21,)),
    Service("SSH servers", (TCP,), (22,)),
    Service("Telnet servers", (TCP,), (23,)),
)
DEFAULT_PERCENTAGE = 1.0


def servers(
    batches: Sequence[FlowBatch],
    service: Service,
    *,
    count: int | None = None,
    percentage: float | None = None,
    threshold: float | None = None,
) -> groupby.TopBins:
    """``rwstats --fields=sIP`` over the service's answering flows, limited as asked."""
    state = groupby.empty("sip", f"{service.rank_by},bytes,packets,records")
    for batch in batches:
        state = groupby.update(state, batch[service.matches(batch)])
    if count is None and threshold is None and percentage is None:
        percentage = DEFAULT_PERCENTAGE
    return groupby.top(
        groupby.result(state),
        service.rank_by,
        count=count,
        percentage=percentage,
        threshold=threshold,
    )


def assetdiscovery(
    batches: Sequence[FlowBatch],
    *,
    count: int | None = None,
    percentage: float | None = None,
    threshold: float | None = None,
) -> Chart:
    """The tree Assets → service → server (leaf value: bytes the server sent)."""
    branches, rows = [], []
    for service in SERVICES:
        found = servers(batches, service, count=count, percentage=percentage, threshold=threshold)
        addresses = field_labels(found.table, "sip")
        sent = found.table.columns["bytes"].tolist()
        leaves = [
            {"name": address, "value": int(b)} for address, b in zip(addresses, sent, strict=True)
        ]
        branches.append({"name": f"{service.name} ({len(leaves)})", "children": leaves})
        rows.extend(
            [service.name, address, int(b), int(p), int(r)]
            for address, b, p, r in zip(
                addresses,
                sent,
                found.table.columns["packets"].tolist(),
                found.table.columns["records"].tolist(),
                strict=True,
            )
        )
    limit = (
        f"top {count}"
        if count is not None
        else f"≥ {threshold:g}"
        if threshold is not None
        else f"≥ {percentage if percentage is not None else DEFAULT_PERCENTAGE:g} % of the service"
    )
    return Chart(
        kind="tree",
        title=f"{len(rows)} servers found from flows ({limit})",
        option={
            "series": [
                {
                    "type": "tree",
                    "name": "assets",
                    "data": [{"name": "Assets", "children": branches}],
                    "top": 20,
                    "left": 90,
                    "bottom": 20,
                    "right": 220,
                    "symbolSize": 9,
                    "initialTreeDepth": -1,
                    "expandAndCollapse": True,
                    "label": {"position": "left", "verticalAlign": "middle", "align": "right"},
                    "leaves": {"label": {"position": "right", "align": "left"}},
                }
            ]
        },
        table=Table(columns=["service", "server", "bytes", "packets", "records"], rows=rows),
        height_px=max(400, 18 * (len(rows) + len(SERVICES)) + 60),
    )
