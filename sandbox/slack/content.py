"""Message content rules as Slack applies them: text length, Block Kit validity, JSON-or-string arguments."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, Option
from slack_sdk.models.views import View

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
    problems = block_problems(blocks, limit=MAX_BLOCKS, pointer="/blocks")
    if problems:
        raise ApiError(
            "invalid_blocks",
            errors=problems,
            response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
        )
    return blocks


def block_problems(blocks: list[Any], *, limit: int, pointer: str) -> list[str]:
    """What is wrong with ``blocks`` (count, then each block through slack_sdk), with JSON pointers."""
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"no more than {limit} items allowed [json-pointer:{pointer}]")
    for i, raw in enumerate(blocks):
        where = f"[json-pointer:{pointer}/{i}]"
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
            continue
        problems.extend(option_problems(raw, f"{pointer}/{i}"))
    return problems


def _elements(block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"/{key}", block[key]) for key in ("element", "accessory") if isinstance(block.get(key), dict)]
    found += [(f"/elements/{j}", e) for j, e in enumerate(block.get("elements") or []) if isinstance(e, dict)]
    return found


def option_problems(block: dict[str, Any], pointer: str) -> list[str]:
    """The option objects' own rules, which slack_sdk leaves to Slack: text at most 75 characters,
    value at most 150, and an ``initial_option`` that is one of the element's options."""
    problems: list[str] = []
    for path, element in _elements(block):
        options = [(f"{path}/options/{k}", o) for k, o in enumerate(element.get("options") or [])]
        for g, group in enumerate(element.get("option_groups") or []):
            options += [(f"{path}/option_groups/{g}/options/{k}", o) for k, o in enumerate(group.get("options") or [])]
        for where, option in options:
            text = str((option.get("text") or {}).get("text", ""))
            if len(text) > Option.label_max_length:
                problems.append(f"must be less than {Option.label_max_length + 1} characters "
                                f"[json-pointer:{pointer}{where}/text/text]")
            if len(str(option.get("value", ""))) > Option.value_max_length:
                problems.append(f"must be less than {Option.value_max_length + 1} characters "
                                f"[json-pointer:{pointer}{where}/value]")
        initial = element.get("initial_option")
        if isinstance(initial, dict) and initial not in [o for _, o in options]:
            problems.append(f"must match one of the options [json-pointer:{pointer}{path}/initial_option]")
    return problems


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


MAX_VIEW_BYTES = 250 * 1024
MAX_EXTERNAL_ID = 255
_VIEW_FIELDS = ("title", "close", "submit", "private_metadata", "callback_id", "blocks", "type")


def _view_validators() -> list[str]:
    return sorted(name for name in dir(View) if not name.startswith("__") and hasattr(getattr(View, name), "validator"))


def check_view(value: Any, *, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Parse and validate a ``view`` argument with slack_sdk's ``View`` limits (title 24 characters,
    1-100 blocks, private_metadata 3000, callback_id 255, ...) and Slack's own rules: 250 KB at most
    (``view_too_large``), ``type`` one of ``kinds``, a modal has a title and, with input blocks, a
    submit button, external_id 255 characters. Anything else wrong is ``invalid_arguments`` with
    ``[ERROR] … [json-pointer:/view/…]`` messages."""
    spec = json_arg(value, error="invalid_arguments", name="view")
    if spec is None:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]})
    if not isinstance(spec, dict):
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["[ERROR] must be an object [json-pointer:/view]"]}
        )
    if len(json.dumps(spec).encode()) > MAX_VIEW_BYTES:
        raise ApiError("view_too_large")
    problems: list[str] = []
    kind = spec.get("type")
    if kind not in kinds:
        problems.append(f"must be one of {list(kinds)} [json-pointer:/view/type]")
    blocks = spec.get("blocks")
    if not isinstance(blocks, list):
        problems.append("missing required field: blocks [json-pointer:/view/blocks]")
        blocks = []
    problems.extend(block_problems(blocks, limit=View.blocks_max_length, pointer="/view/blocks"))
    if kind == "modal":
        if not spec.get("title"):
            problems.append("missing required field: title [json-pointer:/view/title]")
        if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks) and not spec.get("submit"):
            problems.append("must define submit to use an input block in modals [json-pointer:/view/submit]")
    for name in ("title", "close", "submit"):
        text = spec.get(name)
        if text is not None and not (isinstance(text, dict) and text.get("type") == "plain_text"):
            problems.append(f"must be a plain_text text object [json-pointer:/view/{name}]")
    if len(str(spec.get("external_id") or "")) > MAX_EXTERNAL_ID:
        problems.append(f"must be at most {MAX_EXTERNAL_ID} characters [json-pointer:/view/external_id]")
    if not problems:
        try:
            view = View(**spec)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            problems.append(f"{exc} [json-pointer:/view]")
        else:
            for name in _view_validators():
                try:
                    getattr(view, name)()
                except SlackObjectFormationError as exc:
                    field = next((f for f in _VIEW_FIELDS if f in name), "")
                    problems.append(f"{exc} [json-pointer:/view{'/' + field if field else ''}]")
    if problems:
        raise ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
    return spec
