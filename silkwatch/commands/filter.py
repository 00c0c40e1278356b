"""``silkwatch filter``: rwfilter — partition flows into pass and fail SiLK files.

The partitioning switches, their syntax and their meaning are rwfilter's (see
``detectors/flowfilter.py``, which turns each into a vectorised mask); the
outputs are SiLK flow files that SiLK's own tools read, or a pipe:
``silkwatch filter --proto=6 --pass=stdout day.rw | silkwatch stats --fields=dport -``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.detectors.flowfilter import (
    SWITCHES,
    Check,
    FilterArgumentError,
    partition,
    pass_limit,
)
from silkwatch.flowio import (
    add_compression_argument,
    add_input_arguments,
    add_xargs_argument,
    compression_id,
    read_inputs,
    xargs,
)

EPILOG = """\
examples:
  silkwatch filter --proto=6 --dport=80,443,8000- --pass=web.rw day.rw
  silkwatch filter --saddress=10.1.x.1-5 --not-dcidr=10.0.0.0/8 --pass=stdout day.rw | silkwatch cut
  silkwatch filter --stime=2009/02/12:00-2009/02/12:05 --flags-all=S/SA --print-statistics in/*.rw
  silkwatch filter --not-sipset=internal.set --dipset=watch.set --pass=stdout day.rw
  ls in/*.rw | silkwatch filter --xargs --proto=17 --pass=udp.rw
  silkwatch filter --data-rootdir=/data/silk --start-date=2015/06/17:15 --type=in,inweb \\
      --sensors=S3 --pass=hour.rw
  rwfilter --type=all --pass=stdout ... | silkwatch filter --bytes=1000000- --pass=- | rwcut

Partitioning switches are AND'ed; each address switch has a --not- form:
  addresses  --saddress/--daddress/--any-address/--next-hop-id=IP_WILDCARD (10.1.x.1-5,
             10.0.0.0/8, ::ffff:0:x), --scidr/--dcidr/--any-cidr/--nhcidr=IP,CIDR,...,
             --sipset/--dipset/--anyset/--nhipset=IPSET_FILE (rwset, rwsetbuild)
  ports      --sport/--dport/--aport/--application=INTEGER_LIST (0-66,69-1023,8080)
  protocol   --protocol=6,17  --icmp-type=3  --icmp-code=0-3
  times      --stime/--etime/--active-time=YYYY/MM/DD[:HH[:MM[:SS[.sss]]]][-END]
  volume     --duration=1.5-  --bytes=1000-  --packets=1  --bytes-per-packet=40-60.5
  flags      --flags-all/--flags-initial/--flags-session=S/SA,SA/SA   --tcp-flags=SF
  site       --sensors=S1,3-5  --class=all --type=in,inweb  --flowtypes=all/in  --ip-version=4
Outputs (at least one): --pass / --fail / --all-destination=PATH|stdout|stderr (SiLK
files; stdout only when it is not a terminal), --print-statistics[=PATH],
--print-volume-statistics[=PATH]. --max-pass-records=N stops after N passing records.
"""

#: ``--type`` without ``--class`` and ``--class`` without ``--type`` (silk.conf of twoway)
DEFAULT_CLASS = "all"
DEFAULT_TYPES = ("in", "inweb", "inicmp")


#: rwfilter's IP-set switches (each with a --not- form): name → the address columns tested
SET_SWITCHES = {
    "sipset": ("sip",),
    "dipset": ("dip",),
    "anyset": ("sip", "dip"),
    "nhipset": ("nhip",),
}


class FilterUsageError(SilkwatchError):
    """A filter command line rwfilter would refuse (no output, no test, ...)."""

    reason = "bad_argument"


class _Switch(argparse.Action):
    """Collects partitioning switches in command-line order as ``(name, value)``."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.switches = [*(namespace.switches or []), (self.dest, values)]


class _Statistics(argparse.Action):
    """``--print-statistics[=PATH]``: a following existing file or folder is an input.

    rwfilter needs ``=`` for the optional path; argparse would take ``--print-statistics
    day.rw`` as the path and overwrite the data, so an existing file or folder is read,
    never replaced (remove an old statistics file first to write a new one there).
    """

    def __call__(self, parser, namespace, values, option_string=None):
        path = values
        if values is not None and (os.path.isfile(values) or os.path.isdir(values)):
            namespace.extra_inputs = [*(namespace.extra_inputs or []), values]
            path = None
        namespace.statistics = (self.dest, path or "stderr")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``filter`` to the command line."""
    parser = subparsers.add_parser(
        "filter",
        help="select flows into pass/fail SiLK files (like rwfilter)",
        description="Partition SiLK flows (files, folders, globs, a repository, stdin, or "
        "any text format silkwatch reads) with rwfilter's switches and write them as "
        "SiLK flow files.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(parser)
    add_xargs_argument(parser)
    select = parser.add_argument_group("repository selection")
    select.add_argument("--data-rootdir", metavar="DIR", help="repository root (SILK_DATA_ROOTDIR)")
    select.add_argument("--start-date", metavar="YYYY/MM/DD[:HH]", help="first day or hour")
    select.add_argument("--end-date", metavar="YYYY/MM/DD[:HH]", help="last day or hour")
    select.add_argument("--class", dest="class_name", metavar="CLASS", help="class (all)")
    select.add_argument("--type", dest="types", metavar="TYPE[,TYPE]", help="types, or all")
    select.add_argument("--flowtypes", metavar="CLASS/TYPE[,...]", help="class/type pairs")
    select.add_argument("--sensors", metavar="SENSOR[,...]", help="names, ids, id ranges")
    select.add_argument(
        "--site-config-file",
        metavar="FILE",
        help="silk.conf naming sensors, classes and types (default: $SILK_CONFIG_FILE, else "
        "the stock twoway site)",
    )
    out = parser.add_argument_group("outputs")
    for name in ("pass", "fail", "all"):
        out.add_argument(
            f"--{name}-destination",
            dest=f"{name}_paths",
            action="append",
            default=[],
            metavar="PATH",
            help=f"write the records that {name if name != 'all' else 'are read'} "
            "here (a file, stdout, -, stderr)",
        )
    for name in ("print-statistics", "print-volume-statistics"):
        out.add_argument(
            f"--{name}",
            dest=name,
            nargs="?",
            action=_Statistics,
            metavar="PATH",
            help="counts of files, records read, passed, failed"
            + (" with packets and bytes" if "volume" in name else "")
            + " (to stderr or PATH)",
        )
    out.add_argument("--max-pass-records", type=int, metavar="N", help="pass at most N records")
    out.add_argument("--max-fail-records", type=int, metavar="N", help="fail at most N records")
    add_compression_argument(out)
    tests = parser.add_argument_group("partitioning switches (see above)")
    for switch in SWITCHES:
        tests.add_argument(f"--{switch}", dest=switch, action=_Switch, help=argparse.SUPPRESS)
        if "cidr" in switch or "address" in switch or switch == "next-hop-id":
            tests.add_argument(
                f"--not-{switch}", dest=f"not-{switch}", action=_Switch, help=argparse.SUPPRESS
            )
    for switch in SET_SWITCHES:
        for name in (switch, f"not-{switch}"):
            tests.add_argument(f"--{name}", dest=name, action=_Switch, help=argparse.SUPPRESS)
    parser.set_defaults(run=run, switches=[], extra_inputs=[], statistics=None)


# --- selection -----------------------------------------------------------------------------


def _site_checks(
    args: argparse.Namespace,
) -> tuple[list[Check], list[str] | None, list[int] | None]:
    """Sensor and class/type tests, and the type names and sensor ids for file selection.

    Names are the site's (``--site-config-file``, ``$SILK_CONFIG_FILE``, else twoway).
    """
    from silkwatch.connectors.silk.siteconfig import load_site_config

    site = load_site_config(args.site_config_file)
    checks, type_names, sensors = [], None, None
    if args.class_name or args.types or args.flowtypes:
        if args.flowtypes and (args.class_name or args.types):
            raise FilterUsageError("filter: --flowtypes cannot be used with --class or --type")
        pairs = []
        if args.flowtypes:
            for pair in args.flowtypes.split(","):
                class_name, slash, type_name = pair.partition("/")
                if not slash:
                    raise FilterArgumentError("flowtypes", args.flowtypes, f"{pair!r} is not C/T")
                pairs.append((class_name, type_name))
        else:
            class_name = args.class_name or DEFAULT_CLASS
            wanted = args.types.split(",") if args.types else list(DEFAULT_TYPES)
            pairs = [(class_name, name) for name in wanted]
        ids = set()
        for class_name, type_name in pairs:
            known = [
                flowtype
                for flowtype, (in_class, name) in site.flowtypes.items()
                if class_name in ("all", in_class) and type_name in ("all", name)
            ]
            if not known:
                raise FilterArgumentError("type", f"{class_name}/{type_name}", "unknown class/type")
            ids.update(known)
        flowtypes = np.zeros(256, dtype=bool)
        flowtypes[sorted(ids)] = True
        checks.append(_lookup(",".join(map(str, sorted(ids))), "flowtype", flowtypes))
        type_names = sorted({site.flowtypes[flowtype][1] for flowtype in ids})
    if args.sensors:
        table = np.zeros(65536, dtype=bool)
        for item in args.sensors.split(","):
            low, dash, high = item.partition("-")
            try:
                if low.isdigit() and (not dash or high.isdigit()):
                    first, last = int(low), int(high or low)
                    if not first <= last < len(table):
                        raise ValueError(item)
                    table[first : last + 1] = True
                else:
                    table[_sensor_id(site, item)] = True
            except (ValueError, IndexError) as exc:
                raise FilterArgumentError(
                    "sensors", args.sensors, f"unknown sensor {item!r}"
                ) from exc
        sensors = np.flatnonzero(table).tolist()
        checks.append(_lookup(args.sensors, "sensor", table))
    return checks, type_names, sensors


def _sensor_id(site, name: str) -> int:
    """A sensor name of the site (``S<id>`` too on the twoway site); ValueError if unknown."""
    for sensor, known in site.sensors.items():
        if known == name:
            return sensor
    prefix = site.sensor_prefix
    if prefix and name.startswith(prefix) and name[len(prefix) :].isdigit():
        return int(name[len(prefix) :])
    raise ValueError(name)


def _set_check(switch: str, path: str) -> Check:
    """``--sipset=FILE`` and its kin: records whose address is (``--not-``: is not) in a
    SiLK IPset file. ``--anyset`` tests both ends, ``--not-anyset`` passes when neither is in."""
    from silkwatch.connectors.silk.ipset import read_ipset
    from silkwatch.detectors.flowfilter import ipv4_mapped

    negate = switch.startswith("not-")
    columns = SET_SWITCHES[switch.removeprefix("not-")]
    ipset = read_ipset(path)

    def mask(batch: np.ndarray) -> np.ndarray:
        found = ipset.contains(ipv4_mapped(batch, columns[0]))
        for column in columns[1:]:
            found |= ipset.contains(ipv4_mapped(batch, column))
        return ~found if negate else found

    return Check(switch, path, mask)


def _lookup(value: str, column: str, table: np.ndarray) -> Check:
    """A check passing the records whose ``column`` value is True in ``table``."""
    return Check(column, value, lambda batch: table[batch[column]])


def _date(text: str, what: str) -> tuple[datetime, bool]:
    """A --start-date/--end-date as (moment, hour precision)."""
    text = text.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC), True
    day, sep, hour = text.replace("T", ":").partition(":")
    try:
        moment = datetime.strptime(day, "%Y/%m/%d").replace(tzinfo=UTC)
        return moment + timedelta(hours=int(hour)) if sep else moment, bool(sep)
    except ValueError as exc:
        raise FilterArgumentError(what, text, "expected YYYY/MM/DD[:HH] or epoch seconds") from exc


def selection_hours(start: str | None, end: str | None, today: datetime) -> tuple[int, int]:
    """First and last hour (epoch ms) of rwfilter's --start-date/--end-date rules."""
    if end and not start:
        raise FilterUsageError("filter: --end-date needs --start-date")
    first, first_hourly = _date(start, "start-date") if start else (today, False)
    if not first_hourly:
        first = first.replace(hour=0)
    if end:
        last, last_hourly = _date(end, "end-date")
        if not first_hourly:
            last = last.replace(hour=23)
        elif not last_hourly:
            last = last.replace(hour=first.hour)
    else:
        last = first if first_hourly else first.replace(hour=23)
    return int(first.timestamp()) * 1000, int(last.timestamp()) * 1000


# --- outputs -------------------------------------------------------------------------------


@dataclass
class Volume:
    """Records, packets and bytes of one side of the partition."""

    records: int = 0
    packets: int = 0
    bytes: int = 0

    def add(self, batch: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Count ``batch``, or only its ``rows``."""
        packets, volume = batch["packets"], batch["bytes"]
        if rows is not None:
            packets, volume = packets[rows], volume[rows]
        self.records += len(packets)
        self.packets += int(packets.sum(dtype=np.uint64))
        self.bytes += int(volume.sum(dtype=np.uint64))


@dataclass
class Statistics:
    """What ``--print-statistics`` reports."""

    files: int = 0
    read: Volume = field(default_factory=Volume)
    passed: Volume = field(default_factory=Volume)

    def text(self, volume: bool) -> str:
        """rwfilter's one-line or four-line summary, byte for byte."""
        read, passed = self.read, self.passed
        if not volume:
            return (
                f"Files {self.files:5d}.  Read {read.records:10d}.  Pass {passed.records:10d}. "
                f"Fail  {read.records - passed.records:10d}.\n"
            )
        rows = [
            f"{'':>5}|{'Recs':>18}|{'Packets':>18}|{'Bytes':>20}|{'Files':>10}|",
            f"{'Total':>5}|{read.records:18d}|{read.packets:18d}|{read.bytes:20d}|{self.files:10d}|",
            f"{'Pass':>5}|{passed.records:18d}|{passed.packets:18d}|{passed.bytes:20d}|{'':>10}|",
            f"{'Fail':>5}|{read.records - passed.records:18d}|{read.packets - passed.packets:18d}|"
            f"{read.bytes - passed.bytes:20d}|{'':>10}|",
        ]
        return "\n".join(rows) + "\n"


def _open_writers(args: argparse.Namespace, stack: ExitStack) -> dict[str, list]:
    """A SilkWriter per destination, headers written now (an empty result is a valid file)."""
    from silkwatch.connectors.output import STDOUT_NAMES, open_output
    from silkwatch.connectors.silk import SilkWriter
    from silkwatch.connectors.silk.header import EntryId, HeaderEntry

    compression = compression_id(args.compression_method)
    invocation = HeaderEntry.text(EntryId.INVOCATION, " ".join(args.command_line))
    writers: dict[str, list] = {}
    for side in ("pass", "fail", "all"):
        writers[side] = []
        for path in getattr(args, f"{side}_paths"):
            if path in STDOUT_NAMES and sys.stdout.isatty():
                raise FilterUsageError(
                    f"filter: --{side}-destination={path}: will not write binary flows to a "
                    "terminal; redirect or pipe standard output"
                )
            stream = stack.enter_context(open_output(path))
            writer = SilkWriter(stream, compression=compression, entries=[invocation])
            writers[side].append(stack.enter_context(writer))
    return writers


def _sources(args: argparse.Namespace, site_types, site_sensors) -> list[str]:
    from silkwatch.connectors.inputs import repository_files, resolve_inputs

    names = [*args.inputs, *args.extra_inputs]
    root = args.data_rootdir or (os.environ.get("SILK_DATA_ROOTDIR") if args.start_date else None)
    if (names or args.xargs) and (args.data_rootdir or args.start_date or args.end_date):
        raise FilterUsageError(
            "filter: --data-rootdir/--start-date/--end-date select repository files; "
            "they cannot be combined with named inputs"
        )
    if args.xargs:
        if names:
            raise FilterUsageError("filter: --xargs names the inputs; name no other input")
        return xargs(args)  # resolved; an empty list reads nothing (not stdin), as rwfilter
    if not root:
        if args.start_date or args.end_date:
            raise FilterUsageError("filter: --start-date needs --data-rootdir or SILK_DATA_ROOTDIR")
        return resolve_inputs(names)
    start_ms, end_ms = selection_hours(args.start_date, args.end_date, datetime.now(UTC))
    return repository_files(
        root,
        sensors=site_sensors,
        types=site_types or list(DEFAULT_TYPES),
        start_ms=start_ms,
        end_ms=end_ms,
    )


def run(args: argparse.Namespace) -> int:
    """Read every input once, writing each batch's pass and fail records as it goes."""
    from silkwatch.connectors.inputs import InputRun
    from silkwatch.detectors.flowfilter import parse_switch
    from silkwatch.detectors.schema import take_rows

    checks = [
        _set_check(name, value)
        if name.removeprefix("not-") in SET_SWITCHES
        else parse_switch(name, value)
        for name, value in args.switches
    ]
    site_checks, site_types, site_sensors = _site_checks(args)
    checks += site_checks
    if not (args.pass_paths or args.fail_paths or args.all_paths or args.statistics):
        raise FilterUsageError(
            "filter: no output: give --pass, --fail, --all-destination or --print-statistics"
        )
    if not checks and not (args.all_paths and not args.pass_paths and not args.fail_paths):
        raise FilterUsageError("filter: no partitioning switch: give at least one test")
    files = _sources(args, site_types, site_sensors)
    stats = Statistics()
    max_pass, max_fail = args.max_pass_records, args.max_fail_records
    stop_when_passed = max_pass is not None and not (args.fail_paths or args.all_paths)
    inputs = InputRun()
    with ExitStack() as stack:
        writers = _open_writers(args, stack)
        # a damaged input is reported and the records read are still written (exit 1)
        batches: Iterator[np.ndarray] = read_inputs(args, files, run=inputs, keep_going=True)
        for batch in batches:
            passed = partition(batch, checks)
            if stop_when_passed:
                keep = pass_limit(passed, stats.passed.records, max_pass)
                batch, passed = batch[:keep], passed[:keep]
            passed_before = stats.passed.records
            failed_before = stats.read.records - passed_before
            stats.read.add(batch)
            rows = np.flatnonzero(passed)
            stats.passed.add(batch, rows)
            for writer in writers["all"]:
                writer.write(batch)
            if writers["pass"]:
                good = take_rows(batch, rows)
                if max_pass is not None:
                    good = good[: max(max_pass - passed_before, 0)]
                for writer in writers["pass"]:
                    writer.write(good)
            if writers["fail"]:
                bad = take_rows(batch, np.flatnonzero(~passed))
                if max_fail is not None:
                    bad = bad[: max(max_fail - failed_before, 0)]
                for writer in writers["fail"]:
                    writer.write(bad)
            if stop_when_passed and stats.passed.records >= max_pass:
                batches.close()
                break
    stats.files = inputs.files
    if args.statistics:
        from silkwatch.connectors.output import open_text_output

        kind, path = args.statistics
        text = stats.text(volume=kind == "print-volume-statistics")
        if path == "stderr":
            sys.stderr.write(text)
        else:
            with open_text_output(path) as out:
                out.write(text)
    return 0
