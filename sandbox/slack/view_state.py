"""``view.state.values`` as Slack builds it from what a user entered, and the client's own checks
before a submission is sent (required fields, text lengths)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

REQUIRED = "Please complete this required field."

_TEXT = {"plain_text_input", "email_text_input", "url_text_input", "number_text_input"}
_ONE_OPTION = {"static_select", "external_select", "radio_buttons"}
_MANY_OPTIONS = {"multi_static_select", "multi_external_select", "checkboxes"}
_PICKS = {
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
}
_INITIAL = {
    "users_select": "initial_user",
    "conversations_select": "initial_conversation",
    "channels_select": "initial_channel",
    "multi_users_select": "initial_users",
    "multi_conversations_select": "initial_conversations",
    "multi_channels_select": "initial_channels",
    "datepicker": "initial_date",
    "timepicker": "initial_time",
    "datetimepicker": "initial_date_time",
}


def _options(element: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        found.extend(group.get("options") or [])
    return found


def _option(element: dict[str, Any], value: str) -> dict[str, Any]:
    if element.get("type", "").endswith("external_select"):
        return {"text": {"type": "plain_text", "text": value, "emoji": True}, "value": value}
    for opt in _options(element):
        if opt.get("value") == value:
            return copy.deepcopy(opt)
    choices = [o.get("value") for o in _options(element)]
    raise ValueError(f"{value!r} is not an option of {element.get('action_id')!r}; its options are {choices}")


def element_state(element: dict[str, Any], raw: Any, *, given: bool) -> dict[str, Any]:
    """The state entry of one element: ``{"type": ..., "value" | "selected_option" | ...: ...}``;
    without a ``given`` value the element keeps its initial one."""
    kind = str(element.get("type"))
    out: dict[str, Any] = {"type": kind}
    if kind in _TEXT:
        out["value"] = (None if raw in (None, "") else str(raw)) if given else element.get("initial_value")
    elif kind in _ONE_OPTION:
        if given:
            out["selected_option"] = None if raw is None else _option(element, str(raw))
        else:
            out["selected_option"] = copy.deepcopy(element.get("initial_option"))
    elif kind in _MANY_OPTIONS:
        if given:
            items = [raw] if isinstance(raw, str) else list(raw or [])
            out["selected_options"] = [_option(element, str(v)) for v in items]
        else:
            out["selected_options"] = copy.deepcopy(element.get("initial_options") or [])
    elif kind in _PICKS:
        out[_PICKS[kind]] = raw if given else element.get(_INITIAL[kind])
    else:
        out["value"] = raw if given else element.get("initial_value")
    return out


def _elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    if block.get("type") == "input" and isinstance(block.get("element"), dict):
        return [block["element"]]
    if block.get("type") == "actions":
        return [e for e in block.get("elements") or [] if isinstance(e, dict)]
    if isinstance(block.get("accessory"), dict):
        return [block["accessory"]]
    return []


def _is_empty(entry: dict[str, Any]) -> bool:
    return all(v in (None, "", []) for k, v in entry.items() if k != "type")


def build_values(
    blocks: list[dict[str, Any]],
    entered: Mapping[str, Any] | None,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``(state.values, client_errors)`` for a view whose user ``entered`` values.

    ``entered`` maps a block_id to ``{action_id: raw}``, or straight to ``raw`` for a block with one
    element (input blocks always have one). A raw value is the text typed, the option value (or list
    of values) chosen, a user/conversation id, a date. Input blocks not entered keep ``previous`` (what
    the user typed before) or their initial value; other blocks appear only when entered.
    ``client_errors`` are what the Slack client shows before it would send anything.
    """
    entered = dict(entered or {})
    previous = previous or {}
    known = {b.get("block_id") for b in blocks}
    unknown = sorted(set(entered) - known)
    if unknown:
        raise LookupError(f"no block {unknown} in this view; its blocks are {sorted(str(k) for k in known)}")
    values: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for block in blocks:
        bid = str(block.get("block_id"))
        elements = {str(e.get("action_id")): e for e in _elements(block)}
        if bid in entered:
            raw = entered[bid]
            if not isinstance(raw, dict):
                if len(elements) != 1:
                    raise LookupError(f"block {bid!r} has elements {sorted(elements)}: give {{action_id: value}}")
                raw = {next(iter(elements)): raw}
            missing = sorted(set(raw) - set(elements))
            if missing:
                raise LookupError(f"no element {missing} in block {bid!r}; its elements are {sorted(elements)}")
            values[bid] = {aid: element_state(elements[aid], v, given=True) for aid, v in raw.items()}
        elif block.get("type") == "input" and elements:
            values[bid] = copy.deepcopy(dict(previous.get(bid) or {})) or {
                aid: element_state(e, None, given=False) for aid, e in elements.items()
            }
        if block.get("type") == "input" and bid in values:
            entry = next(iter(values[bid].values()))
            element = next(iter(elements.values()))
            if _is_empty(entry):
                if not block.get("optional", False):
                    errors[bid] = REQUIRED
                continue
            text = entry.get("value")
            if isinstance(text, str) and element.get("type") == "plain_text_input":
                if element.get("min_length") and len(text) < int(element["min_length"]):
                    errors[bid] = f"Please enter at least {element['min_length']} characters."
                elif element.get("max_length") and len(text) > int(element["max_length"]):
                    errors[bid] = f"Please enter no more than {element['max_length']} characters."
    return values, errors
