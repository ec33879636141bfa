"""Instants: the current time, and the one timestamp format of everything the bot stores.

Stored times are RFC 3339 in UTC with a ``Z`` (``2030-01-07T12:00:00Z``, with microseconds when there
are any), as Kubernetes and Alertmanager write theirs. :func:`parse_time` reads that, the ``+00:00``
form older records carry and the datetimes the Kubernetes client returns, always giving an aware time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str:
    """``moment`` in the stored format (``""`` for ``None``)."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """A stored or received time as an aware datetime (naive ones are UTC); ``None`` when empty or unreadable."""
    if not value:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
