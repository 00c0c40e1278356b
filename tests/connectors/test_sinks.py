"""Every flow-batch output the collector can be given meets
:class:`silkwatch.connectors.sinks.BatchSink`."""

from __future__ import annotations

import io
from pathlib import Path

from silkwatch.connectors.kafka.publisher import FlowPublisher
from silkwatch.connectors.netflow.outputs import RepositoryWriter, StreamWriter
from silkwatch.connectors.sinks import BatchSink


def test_outputs_are_batch_sinks(tmp_path: Path) -> None:
    with RepositoryWriter(tmp_path) as repository:
        stream = StreamWriter(io.BytesIO())
        assert [isinstance(o, BatchSink) for o in (repository, stream, object())] == [
            True,
            True,
            False,
        ]
        stream.close()
    assert issubclass(FlowPublisher, BatchSink)  # its instances need a broker
