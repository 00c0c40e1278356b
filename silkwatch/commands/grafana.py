"""``silkwatch grafana``: build the dashboards as JSON, or push them to a Grafana.

``build`` writes the provisioning JSON where the user says (``--out``, default the
current directory: never into the installed package); ``push`` is for
a Grafana that silkwatch does not provision (an existing SOC instance): it
creates or updates the Prometheus datasource (from the same provisioning YAML,
only the URL overridden), uploads both dashboards and makes dark the org theme.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import yaml
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException
from grafana_client.model import PersonalPreferences

from silkwatch.connectors.alerting.secrets import Secret, read_secret
from silkwatch.detectors.exceptions import SilkwatchError
from silkwatch.grafana.build import (
    DASHBOARD_DIR,
    DASHBOARDS,
    WALL_UID,
    build_json,
    write_dashboards,
)

logger = logging.getLogger(__name__)

DATASOURCE_YAML = DASHBOARD_DIR.parent / "provisioning/datasources/prometheus.yml"

EPILOG = """\
examples:
  silkwatch grafana build                      silkwatch-wall.json, silkwatch-analyst.json here
  silkwatch grafana build --out /etc/grafana/dashboards
  silkwatch grafana build --out grafana/dashboards     (in a checkout: what compose mounts)
  GRAFANA_TOKEN=glsa_... silkwatch grafana push --url https://grafana.soc.example
  silkwatch grafana push --url http://127.0.0.1:3000 --token-file /run/secrets/grafana \\
      --prometheus-url http://prometheus.soc.example:9090
"""


class GrafanaPushError(SilkwatchError):
    """Grafana refused or could not be reached while pushing."""

    reason = "grafana_push"

    def __init__(self, url: str, step: str, detail: str) -> None:
        super().__init__(f"grafana push: {url}: {step}: {detail}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grafana",
        help="build the Grafana dashboards, or push them to a Grafana server",
        description="Build silkwatch's wall and analyst dashboards (Grafana 11.6 JSON) "
        "or upload them, with their Prometheus datasource, through Grafana's HTTP API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="write the dashboards as provisioning JSON",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        help="output folder, created if missing (default: the current directory)",
    )
    build.set_defaults(run=run_build)
    push = actions.add_parser("push", help="upload datasource and dashboards to a Grafana")
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. http://127.0.0.1:3000")
    push.add_argument(
        "--token",
        help="service account token; prefer $GRAFANA_TOKEN or --token-file (not in `ps`)",
    )
    push.add_argument("--token-file", type=Path, help="file holding the token")
    push.add_argument(
        "--prometheus-url",
        default="http://prometheus:9090",
        help="Prometheus URL as Grafana sees it (default: %(default)s)",
    )
    push.add_argument("--folder-uid", help="Grafana folder to put the dashboards in")
    push.set_defaults(run=run_push)


def run_build(args: argparse.Namespace) -> int:
    for path in write_dashboards(args.out):
        print(path)
    return 0


def _token(args: argparse.Namespace) -> Secret:
    if args.token:
        return Secret(args.token, "--token")
    if args.token_file:
        return read_secret(file=args.token_file)
    if "GRAFANA_TOKEN" in os.environ:
        return read_secret(env="GRAFANA_TOKEN")
    raise GrafanaPushError(args.url, "token", "give --token, --token-file or $GRAFANA_TOKEN")


def datasource_definition(prometheus_url: str) -> dict[str, Any]:
    """The provisioned datasource, as the HTTP API takes it, pointing at ``prometheus_url``."""
    (source,) = yaml.safe_load(DATASOURCE_YAML.read_text())["datasources"]
    return {**source, "url": prometheus_url}


def push(api: GrafanaApi, url: str, prometheus_url: str, folder_uid: str | None = None) -> None:
    """Create or update the datasource, upload every dashboard, set the dark theme."""
    source = datasource_definition(prometheus_url)
    step = "datasource"
    try:
        try:
            api.datasource.get_datasource_by_uid(source["uid"])
            api.datasource.update_datasource_by_uid(source["uid"], source)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.datasource.create_datasource(source)
        for name in DASHBOARDS:
            step = f"dashboard {name}"
            body: dict[str, Any] = {"dashboard": build_json(name), "overwrite": True}
            if folder_uid:
                body["folderUid"] = folder_uid
            api.dashboard.update_dashboard(body)
        step = "preferences"
        api.organization.patch_preferences(
            PersonalPreferences(theme="dark", homeDashboardUID=WALL_UID)
        )
    except GrafanaException as exc:
        raise GrafanaPushError(url, step, f"HTTP {exc.status_code} {exc.message}") from exc
    except OSError as exc:
        raise GrafanaPushError(url, step, f"cannot connect ({type(exc).__name__})") from exc
    logger.info("grafana pushed url=%s dashboards=%d", url, len(DASHBOARDS))


def run_push(args: argparse.Namespace) -> int:
    token = _token(args)
    api = GrafanaApi.from_url(args.url, credential=token.reveal())
    push(api, args.url, args.prometheus_url, args.folder_uid)
    print(f"pushed datasource and {len(DASHBOARDS)} dashboards to {args.url}")
    return 0
