"""Message content rules as Slack applies them: text length, Block Kit validity, JSON-or-string arguments."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

MAX_TEXT = 40_000
MAX_BLOCKS = 50


class ApiError(Exception):
    """An API-level failure: answered as HTTP ``status`` with ``{"ok": false, "error": error, ...}``."""

    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


def json_arg(value: Any, *, error: str, name: str) -> Any:
    """An argument that may arrive as JSON data (JSON body) or as a JSON string (form / query)."""
    if value is None or isinstance(value, list | dict):
        return value
    if isinstance(value, str):
        if value.strip() == "":
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ApiError(error, response_metadata={"messages": [f"[ERROR] {name}: {exc}"]}) from exc
    raise ApiError(error, response_metadata={"messages": [f"[ERROR] {name}: unexpected type"]})


def check_blocks(value: Any) -> list[dict[str, Any]] | None:
    """Parse and validate ``blocks`` with slack_sdk's own Block Kit models and limits."""
    blocks = json_arg(value, error="invalid_blocks_format", name="blocks")
    if blocks is None:
        return None
    if not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format", errors=["must be an array [json-pointer:/blocks]"])
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for i, raw in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}]"
        if not isinstance(raw, dict) or "type" not in raw:
            problems.append(f"missing required field: type {where}")
            continue
        try:
            parsed = Block.parse(dict(raw))
            if parsed is None:
                problems.append(f"unsupported type: {raw.get('type')} {where}")
                continue
            parsed.to_dict()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
            problems.append(f"{exc} {where}")
    if problems:
        raise ApiError(
            "invalid_blocks",
            errors=problems,
            response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
        )
    return blocks


def check_attachments(value: Any) -> list[dict[str, Any]] | None:
    atts = json_arg(value, error="invalid_attachments", name="attachments")
    if atts is not None and not (isinstance(atts, list) and all(isinstance(a, dict) for a in atts)):
        raise ApiError("invalid_attachments")
    return atts


def check_content(
    args: dict[str, Any], *, require: bool = True
) -> tuple[str | None, list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """(text, blocks, attachments) from ``args``; ``no_text`` when ``require`` and all are missing."""
    text = args.get("text")
    if text is not None and not isinstance(text, str):
        text = str(text)
    blocks = check_blocks(args.get("blocks"))
    attachments = check_attachments(args.get("attachments"))
    if text is not None and len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    if require and not text and not blocks and not attachments:
        raise ApiError("no_text")
    return text, blocks, attachments


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)
