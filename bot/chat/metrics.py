"""The bot's own Prometheus metrics, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter(
    "hello_chatops_commands_total", "Sub-commands handled, by name and outcome.",
    ["command", "outcome"], registry=REGISTRY,
)
HANDLER_SECONDS = Histogram(
    "hello_chatops_handler_seconds", "Time from the ack to the end of a sub-command's work.",
    ["command"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SLACK_ERRORS = Counter(
    "hello_chatops_slack_api_errors_total", "Slack Web API calls that failed, by method and error.",
    ["method", "error"], registry=REGISTRY,
)
BACKGROUND_ERRORS = Counter(
    "hello_chatops_background_errors_total",
    "Failures other than Slack's in work run after an ack (replies, Home, cards, digests), by kind of task.",
    ["task"], registry=REGISTRY,
)
ACTIONS = Counter(
    "hello_chatops_button_actions_total", "Button clicks handled, by action and outcome.",
    ["action", "outcome"], registry=REGISTRY,
)
# The buttons the bot puts in its messages (approval requests, release follow-ups). A click carries
# whatever action id its sender chose: any other id is counted as "unknown", so the label stays bounded.
ACTION_IDS = frozenset({"approve", "reject", "release_rollback", "release_promote", "release_abort",
                        "analysis_continue", "analysis_abort",
                        "alert_rollback", "alert_abort", "alert_silence", "alert_ack", "status_details"})


ALERTS = Counter(
    "hello_chatops_alert_notifications_total", "Alertmanager notifications received at /alertmanager, by outcome.",
    ["outcome"], registry=REGISTRY,
)


def action_label(action_id: str) -> str:
    """The ``action`` label for a click's ``action_id``."""
    return action_id if action_id in ACTION_IDS else "unknown"


def exposition() -> bytes:
    return generate_latest(REGISTRY)
