"""NetworkHours.close: the one place both runners turn closed partition hours into network hours."""

from silkwatch.detectors.config import DetectorsConfig
from silkwatch.streams.binstopic import closed_hour_from_message, closed_hour_message
from silkwatch.streams.network import NetworkHours
from silkwatch.streams.processing import ClosedHour

H = 3_600_000


def hour(partition: int, start_ms: int, bytes_: float) -> ClosedHour:
    return ClosedHour(partition, start_ms, {("total", 0): (1.0, bytes_, 1.0)}, start_ms + H)


def test_a_network_hour_closes_when_every_reporting_partition_has_passed_it():
    network = NetworkHours({})
    assert network.add(hour(0, 0, 100.0), offset=0) == [0]
    assert network.add(hour(1, 0, 50.0), offset=1) == []  # hour 0 was closed by partition 0 alone
    assert network.add(hour(0, H, 10.0), offset=2) == []  # partition 1 is still at H
    assert network.add(hour(1, H, 20.0), offset=3) == [H]
    assert network.volumes(0) == {("total", 0): [2.0, 150.0, 2.0]}
    assert network.volumes(H) == {("total", 0): [2.0, 30.0, 2.0]}


def test_a_replayed_hour_is_not_counted_twice():
    network = NetworkHours({})
    network.add(hour(0, 0, 100.0), offset=5)
    assert network.add(hour(0, 0, 100.0), offset=5) == []
    assert network.volumes(0) == {("total", 0): [1.0, 100.0, 1.0]}


def test_close_gives_the_same_alerts_from_an_hour_and_from_its_bins_topic_message():
    octets = [400e6 if start == 26 else (20e6, 25e6)[start % 2] for start in range(30)]
    hours = [hour(0, start * H, bytes_) for start, bytes_ in enumerate(octets)]
    direct, via_topic = NetworkHours({}), NetworkHours({})
    config = DetectorsConfig()
    alerts = [a for i, h in enumerate(hours) for a in direct.close(h, offset=i, config=config)]
    decoded = [closed_hour_from_message(closed_hour_message(h)) for h in hours]
    again = [a for i, h in enumerate(decoded) for a in via_topic.close(h, offset=i, config=config)]
    assert decoded == hours
    assert [(a.kind, a.first_seen_ms) for a in alerts] == [("volume", 26 * H)]
    assert again == alerts
