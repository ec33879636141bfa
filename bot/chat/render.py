"""Pure rendering: data in, Block Kit blocks out (Jinja2 templates in ``bot/chat/templates``).

Each template renders a JSON list of blocks. The result is checked with slack_sdk's block models,
which carry Slack's own limits (text lengths, element counts), so a message Slack would refuse fails
here first, in tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from slack_sdk.models.blocks import Block

from bot.core.durations import duration
from bot.core.text import cut, escape, foreign

TEMPLATES = Path(__file__).with_name("templates")
MAX_BLOCKS = 50
__all__ = ["blocks", "cut", "duration", "error", "escape", "foreign", "text_block", "validate"]


def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    if value is None:
        return "unknown"
    return value.astimezone(UTC).strftime(fmt)


def percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def bar(done: int, total: int, width: int = 10) -> str:
    """A one-line progress bar: ``▰▰▰▱▱▱▱▱▱▱``."""
    if total <= 0:
        return "▱" * width
    filled = max(0, min(width, round(width * done / total)))
    return "▰" * filled + "▱" * (width - filled)


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@cache
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(tojson=_tojson, escape_md=escape, when=when, percent=percent, bar=bar, duration=duration,
                       cut=cut)
    return env


def blocks(template: str, **data: Any) -> list[dict]:
    """Render ``templates/<template>.json.j2`` into validated Block Kit blocks."""
    text = _env().get_template(f"{template}.json.j2").render(**data)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:  # a template bug, not user input
        raise ValueError(f"template {template} produced invalid JSON: {exc}") from None
    return validate(parsed)


def validate(items: list[dict], *, limit: int = MAX_BLOCKS) -> list[dict]:
    """Check blocks against Slack's limits (``limit`` blocks: a message's, unless a view's is given);
    raises ``SlackObjectFormationError`` or ``ValueError``."""
    if len(items) > limit:
        raise ValueError(f"{len(items)} blocks: Slack accepts at most {limit}")
    out = []
    for item in items:
        block = Block.parse(item)
        if block is None:
            raise ValueError(f"unknown block: {item!r:.80}")
        block.validate_json()
        out.append(block.to_dict())
    return out


def text_block(text: str) -> list[dict]:
    return validate([{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}])


def error(message: str, usage: str = "", ref: str = "") -> list[dict]:
    return blocks("error", message=message, usage=usage, ref=ref)
