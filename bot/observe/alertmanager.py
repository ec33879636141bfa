"""Alertmanager's API v2, read for the bake window: which alerts fire now (a thin wrapper, aiohttp).

``GET /api/v2/alerts?active=true&silenced=false&inhibited=false&filter=<matcher>`` lists the alerts
Alertmanager holds; each has ``labels``, ``annotations``, ``startsAt`` and ``status.state``. Errors
(unreachable, non-2xx, not JSON) raise :class:`~bot.core.errors.DependencyUnavailable` with a short reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from bot.core.errors import DependencyUnavailable


@dataclass(frozen=True)
class ActiveAlert:
    """One alert Alertmanager says fires."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    starts_at: datetime | None = None
    fingerprint: str = ""

    @property
    def severity(self) -> str:
        return str(self.labels.get("severity", ""))


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


class Alertmanager:
    """``url`` is Alertmanager's base URL (``HELLO_ALERTMANAGER_URL``)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    async def active(self, matchers: Mapping[str, str]) -> list[ActiveAlert]:
        """The alerts firing now (not silenced, not inhibited) whose labels equal every one of ``matchers``."""
        params = [("active", "true"), ("silenced", "false"), ("inhibited", "false"), ("unprocessed", "false")]
        params += [("filter", f'{name}="{value}"') for name, value in matchers.items()]
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session, \
                    session.get(f"{self.url}/api/v2/alerts", params=params) as response:
                if response.status >= 300:
                    raise DependencyUnavailable(f"Alertmanager answered HTTP {response.status}")
                items = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DependencyUnavailable(f"Alertmanager unavailable: {type(exc).__name__}") from None
        out = []
        for item in items if isinstance(items, list) else []:
            labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
            out.append(ActiveAlert(name=labels.get("alertname", "?"), labels=labels,
                                   summary=str((item.get("annotations") or {}).get("summary", "")),
                                   starts_at=_time(str(item.get("startsAt") or "")),
                                   fingerprint=str(item.get("fingerprint", ""))))
        return out
