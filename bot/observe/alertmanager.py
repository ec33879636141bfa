"""Alertmanager's API v2, as far as the bot uses it (aiohttp; thin wrappers).

* :func:`create_silence`: the alert card's "Silence 1h" (``POST /api/v2/silences``);
* :meth:`Alertmanager.active`: the alerts firing now, which the bake window watches
  (``GET /api/v2/alerts?active=true&silenced=false&inhibited=false&filter=<matcher>``).

Errors (unreachable, non-2xx, not the expected JSON) raise :class:`~bot.core.errors.DependencyUnavailable`
with a short reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from bot.core.errors import DependencyUnavailable
from bot.core.times import iso, parse_time

TIMEOUT_SECONDS = 10.0


async def create_silence(url: str, matchers: Mapping[str, str] | Iterable[tuple[str, str, bool]], starts: datetime,
                         ends: datetime, *, created_by: str, comment: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """``POST {url}/api/v2/silences`` for alerts whose labels equal ``matchers`` (or, given as
    ``(label, value, is a regex)``, match them); returns the silence id.

    Raises :class:`DependencyUnavailable` with a short reason (status and the start of Alertmanager's
    answer, or the connection error's type) when it cannot be created.
    """
    given = [(k, v, False) for k, v in matchers.items()] if isinstance(matchers, Mapping) else list(matchers)
    body = {
        "matchers": [{"name": k, "value": v, "isRegex": regex, "isEqual": True} for k, v, regex in given],
        "startsAt": iso(starts), "endsAt": iso(ends), "createdBy": created_by, "comment": comment,
    }
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.post(f"{url.rstrip('/')}/api/v2/silences", json=body) as answer:
            text = await answer.text()
            if answer.status != 200:
                raise DependencyUnavailable(f"Alertmanager answered {answer.status}: {text[:120]}")
            silence_id = json.loads(text).get("silenceID")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise DependencyUnavailable(f"Alertmanager cannot be reached ({type(exc).__name__})") from None
    except (ValueError, AttributeError):
        raise DependencyUnavailable("Alertmanager's answer is not the expected JSON") from None
    if not isinstance(silence_id, str) or not silence_id:
        raise DependencyUnavailable("Alertmanager's answer has no silence id")
    return silence_id


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
                                   starts_at=parse_time(item.get("startsAt")),
                                   fingerprint=str(item.get("fingerprint", ""))))
        return out
