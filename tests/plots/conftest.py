"""Fixtures for the plot tests: the two sample SiLK files, read once, and one headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``); the tests that need it are marked
``chromium`` and fail, not skip, when it is missing, so CI cannot pass them by
accident.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from silkwatch.connectors.flows import read_flows
from silkwatch.detectors.schema import FlowBatch
from tests.plots.browser import Browser

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SILK = SHARED / "data" / "silk"
FCCX = SILK / "fccx" / "FT_RWIPV6ROUTING-v1-c1-L.dat"
V6MIX = SILK / "generated" / "v6mix.rw"
GOLDEN = SILK / "golden"
#: screenshots for a person to look at (git-ignored)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def golden_rows(name: str) -> list[list[str]]:
    """The data rows of a SiLK text table in ``golden/`` as lists of stripped cells."""
    rows = []
    for text in (GOLDEN / name).read_text().splitlines():
        cells = [cell.strip() for cell in text.split("|")[:-1]]
        if cells and not text.startswith(("INPUT", "OUTPUT")):
            rows.append(cells)
    return rows[1:]  # the title row


@pytest.fixture(scope="session")
def fccx() -> list[FlowBatch]:
    """The FCCX hour: 245,340 IPv4 records, sensor S3, 2015-06-17 15:00 UTC."""
    return list(read_flows(FCCX))


@pytest.fixture(scope="session")
def v6mix() -> list[FlowBatch]:
    """Five hand-made records: IPv6, ICMP, DNS, a 1.9 GB web answer, SSH."""
    return list(read_flows(V6MIX))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for every page of the session (a tab per page)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is needed (apt-get install chromium)")
    browser = Browser(executable)
    yield browser
    browser.close()


def page_data(html: str) -> dict:
    """The JSON a page carries (title, charts with options and tables), as the runtime reads it."""
    start = html.index('<script type="application/json" id="silkwatch-data">')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)
