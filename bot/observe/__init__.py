"""Watching the service: Prometheus queries, charts, Grafana links, status, digests and their schedules."""
