"""Alertmanager's API v2, as far as the bot uses it: create a silence (the alert card's "Silence 1h")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

import aiohttp

from bot.core.errors import DependencyUnavailable

TIMEOUT_SECONDS = 10.0


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def create_silence(url: str, matchers: Mapping[str, str], starts: datetime, ends: datetime, *,
                         created_by: str, comment: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """``POST {url}/api/v2/silences`` for alerts whose labels equal ``matchers``; returns the silence id.

    Raises :class:`DependencyUnavailable` with a short reason (status and the start of Alertmanager's
    answer, or the connection error's type) when it cannot be created.
    """
    body = {
        "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()],
        "startsAt": _stamp(starts), "endsAt": _stamp(ends), "createdBy": created_by, "comment": comment,
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
