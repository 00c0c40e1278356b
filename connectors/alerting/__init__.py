"""Alert delivery: sinks (Slack, Mattermost, Teams, Alertmanager-format webhook,
apprise, Grafana annotations), Alertmanager-like grouping and rate limits, and a
delivery loop that reads the ``alerts`` topic and commits only what receivers
acknowledged."""
