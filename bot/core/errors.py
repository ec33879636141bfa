"""The project's exceptions.

A :class:`CommandError` (and its subclasses) carries a message meant for the person who typed the
command; it is shown as is. Anything else that escapes a handler is logged with its traceback and the
user only sees a short apology with a reference id.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable (or the file and field)."""


class HelloError(Exception):
    """Base class for the project's own errors. ``str(err)`` is safe to show to users."""


class CommandError(HelloError):
    """The command cannot be carried out; the message says why, for the user."""


class UsageError(CommandError):
    """Malformed arguments. ``usage`` is the command's usage line, shown under the message."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class PermissionDenied(CommandError):
    """The policy does not allow this user (or channel) to do this."""


class DependencyUnavailable(CommandError):
    """A dependency (Kubernetes, Prometheus, Slack) cannot be reached or refused; message is user-safe."""


class ClusterError(DependencyUnavailable):
    """A Kubernetes API call failed. ``status`` is the HTTP status (0 when unreachable)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFound(ClusterError):
    """The object does not exist (404)."""


class Conflict(ClusterError):
    """Optimistic-concurrency conflict (409): re-read and retry."""


class Forbidden(ClusterError):
    """The bot's service account may not do this (403)."""


class MetricsUnavailable(DependencyUnavailable):
    """Prometheus is down, slow or refused the query."""


class SlackError(DependencyUnavailable):
    """Slack refused or could not be reached. ``error`` is Slack's error code (e.g. ``not_in_channel``),
    or the name of the exception when Slack could not be reached at all."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"Slack {method} failed: {error}")
        self.method = method
        self.error = error
