"""Views as Slack keeps them: trigger ids, each user's modal stack and Home tab, view ids and hashes.

Plain synchronous state like ``state.py``; every change is announced through the workspace's change
events (``modal_opened``, ``modal_pushed``, ``modal_updated``, ``modal_errors``, ``modal_closed``,
``home_published``), each carrying the user's whole current stack (or Home view) so a console can
redraw from any one event.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .content import ApiError
from .state import Workspace

#: A trigger id can be exchanged for a view this many seconds after the interaction that issued it.
TRIGGER_TTL = 3.0
#: Views in one modal: the root view and at most two pushed on top of it.
MAX_STACK = 3
#: Seconds Slack waits for the app's answer to a view submission before showing an error.
SUBMISSION_TIMEOUT = 3.0

Clock = Callable[[], float]


@dataclass
class Trigger:
    """A ``trigger_id`` handed to the app with an interaction by ``user`` (in ``view_id``, if any)."""

    id: str
    user: str
    issued: float
    view_id: str | None = None
    used: bool = False


class Triggers:
    """Issues trigger ids and exchanges each at most once, within :data:`TRIGGER_TTL` seconds of
    ``clock()`` at issue time."""

    def __init__(self, clock: Clock = time.monotonic, ttl: float = TRIGGER_TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        self.issued: dict[str, Trigger] = {}

    def issue(self, user: str, *, view_id: str | None = None) -> str:
        tid = f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self.issued[tid] = Trigger(id=tid, user=user, issued=self.clock(), view_id=view_id)
        return tid

    def check(self, trigger_id: str) -> Trigger:
        """The trigger, if it may still be exchanged; else ``invalid_trigger_id`` (never issued here,
        or not shaped like one), ``exchanged_trigger_id`` (used before) or ``expired_trigger_id``."""
        trigger = self.issued.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self.clock() - trigger.issued > self.ttl:
            raise ApiError("expired_trigger_id")
        return trigger


def _short_id(length: int = 5) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class ViewRecord:
    """One view the app opened, pushed or published, as Slack stores it."""

    id: str
    type: str  # "modal" or "home"
    user: str
    spec: dict[str, Any]
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Errors shown under input blocks (block_id -> message), from ``response_action: errors``
    #: or from the client's own checks (required fields, lengths); cleared by the next submission.
    errors: dict[str, str] = field(default_factory=dict)
    #: What Slack would show instead of the app's answer ("We had some trouble connecting"), and why.
    problem: str | None = None
    closed: bool = False

    @property
    def external_id(self) -> str:
        return str(self.spec.get("external_id") or "")

    @property
    def callback_id(self) -> str:
        return str(self.spec.get("callback_id") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.spec.get("blocks") or [])

    @property
    def title(self) -> str:
        title = self.spec.get("title")
        return str(title.get("text", "")) if isinstance(title, dict) else str(title or "")

    @property
    def private_metadata(self) -> str:
        return str(self.spec.get("private_metadata") or "")

    def input_blocks(self) -> dict[str, dict[str, Any]]:
        """block_id -> input block."""
        return {b["block_id"]: b for b in self.blocks if b.get("type") == "input"}

    def to_api(self, ws: Workspace) -> dict[str, Any]:
        """The view object as Slack's API and payloads carry it."""
        spec = self.spec
        out: dict[str, Any] = {
            "id": self.id,
            "team_id": ws.team_id,
            "type": self.type,
            "blocks": copy.deepcopy(self.blocks),
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": copy.deepcopy(self.values)},
            "hash": self.hash,
            "title": copy.deepcopy(spec.get("title")),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "close": copy.deepcopy(spec.get("close")),
            "submit": copy.deepcopy(spec.get("submit")),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id,
            "app_id": ws.app_id,
            "external_id": self.external_id,
            "app_installed_team_id": ws.team_id,
            "bot_id": ws.bot_id,
        }
        return out

    def to_state(self, ws: Workspace) -> dict[str, Any]:
        """Everything the emulator knows (for tests and the console)."""
        out = self.to_api(ws)
        out.update(user=self.user, errors=dict(self.errors), problem=self.problem, closed=self.closed)
        return out


class ViewStore:
    """Modal stacks and Home views per user, view ids (``V…``) and hashes."""

    def __init__(self, workspace: Workspace, *, clock: Clock = time.monotonic, home_enabled: bool = True) -> None:
        self.ws = workspace
        self.triggers = Triggers(clock)
        self.home_enabled = home_enabled
        self.stacks: dict[str, list[ViewRecord]] = {}
        self.homes: dict[str, ViewRecord] = {}
        self.by_id: dict[str, ViewRecord] = {}
        self._ids = itertools.count(1)
        self._hashes = itertools.count(1)

    # ---- ids --------------------------------------------------------------------------------
    def _new_id(self) -> str:
        return f"V{next(self._ids):010d}"

    def _new_hash(self) -> str:
        return f"{int(time.time())}.{next(self._hashes):08x}"

    @staticmethod
    def _fill_ids(spec: dict[str, Any]) -> dict[str, Any]:
        """Give every block a ``block_id`` and every input element an ``action_id``, as Slack does."""
        spec = copy.deepcopy(spec)
        for block in spec.get("blocks") or []:
            block.setdefault("block_id", _short_id())
            element = block.get("element")
            if block.get("type") == "input" and isinstance(element, dict):
                element.setdefault("action_id", _short_id())
        return spec

    # ---- look-ups ---------------------------------------------------------------------------
    def get(self, view_id: str) -> ViewRecord | None:
        rec = self.by_id.get(view_id)
        return None if rec is None or rec.closed else rec

    def by_external_id(self, external_id: str) -> ViewRecord | None:
        return next((r for r in self.by_id.values() if not r.closed and r.external_id == external_id), None)

    def stack(self, user: str) -> list[ViewRecord]:
        return list(self.stacks.get(user, []))

    def top(self, user: str) -> ViewRecord | None:
        stack = self.stacks.get(user)
        return stack[-1] if stack else None

    def check_external_id(self, spec: dict[str, Any], *, keep: ViewRecord | None = None) -> None:
        ext = spec.get("external_id")
        if ext:
            other = self.by_external_id(str(ext))
            if other is not None and other is not keep:
                raise ApiError("duplicate_external_id")

    # ---- modal changes ----------------------------------------------------------------------
    def open(self, user: str, spec: dict[str, Any]) -> ViewRecord:
        """A new modal for ``user`` (a modal already open is replaced)."""
        for old in self.stacks.get(user, []):
            old.closed = True
        rec = self._record(user, "modal", spec, previous=None)
        self.stacks[user] = [rec]
        self._emit_stack("modal_opened", user, rec)
        return rec

    def push(self, user: str, spec: dict[str, Any]) -> ViewRecord:
        stack = self.stacks.get(user)
        if not stack:
            raise ApiError("not_found")
        if len(stack) >= MAX_STACK:
            raise ApiError("push_limit_reached")
        rec = self._record(user, "modal", spec, previous=stack[-1])
        stack.append(rec)
        self._emit_stack("modal_pushed", user, rec)
        return rec

    def update(self, rec: ViewRecord, spec: dict[str, Any]) -> ViewRecord:
        """Replace the view's content; input values whose block and action ids survive are kept, and
        so is the view's external_id when the new content names none."""
        spec = self._fill_ids(spec)
        if rec.external_id and not spec.get("external_id"):
            spec["external_id"] = rec.external_id
        keep = {b["block_id"] for b in spec.get("blocks") or []}
        rec.values = {bid: v for bid, v in rec.values.items() if bid in keep}
        rec.spec = spec
        rec.hash = self._new_hash()
        rec.errors = {}
        rec.problem = None
        if rec.type == "home":
            self._emit_home(rec)
        else:
            self._emit_stack("modal_updated", rec.user, rec)
        return rec

    def set_errors(self, rec: ViewRecord, errors: dict[str, str], problem: str | None = None) -> None:
        rec.errors = dict(errors)
        rec.problem = problem
        self._emit_stack("modal_errors", rec.user, rec)

    def pop(self, user: str) -> ViewRecord | None:
        """Close the top view; the one below (if any) shows again."""
        stack = self.stacks.get(user)
        if not stack:
            return None
        rec = stack.pop()
        rec.closed = True
        if not stack:
            del self.stacks[user]
        self._emit_stack("modal_closed", user, rec)
        return rec

    def clear(self, user: str) -> list[ViewRecord]:
        """Close every view of the user's modal."""
        stack = self.stacks.pop(user, [])
        for rec in stack:
            rec.closed = True
        if stack:
            self._emit_stack("modal_closed", user, stack[-1], cleared=True)
        return stack

    # ---- Home -------------------------------------------------------------------------------
    def publish(self, user: str, spec: dict[str, Any]) -> ViewRecord:
        """Create or replace the user's Home view (its id stays; its hash changes)."""
        rec = self.homes.get(user)
        if rec is None:
            rec = self._record(user, "home", spec, previous=None)
            self.homes[user] = rec
            self._emit_home(rec)
            return rec
        return self.update(rec, spec)

    # ---- internals --------------------------------------------------------------------------
    def _record(self, user: str, kind: str, spec: dict[str, Any], *, previous: ViewRecord | None) -> ViewRecord:
        vid = self._new_id()
        rec = ViewRecord(
            id=vid,
            type=kind,
            user=user,
            spec=self._fill_ids(spec),
            hash=self._new_hash(),
            root_view_id=previous.root_view_id if previous else vid,
            previous_view_id=previous.id if previous else None,
        )
        self.by_id[vid] = rec
        return rec

    def _emit_stack(self, kind: str, user: str, rec: ViewRecord, **extra: Any) -> None:
        self.ws.emit(
            {
                "type": kind,
                "user": user,
                "view_id": rec.id,
                "view": rec.to_state(self.ws),
                "stack": [r.to_state(self.ws) for r in self.stacks.get(user, [])],
                **extra,
            }
        )

    def _emit_home(self, rec: ViewRecord) -> None:
        self.ws.emit({"type": "home_published", "user": rec.user, "view_id": rec.id, "view": rec.to_state(self.ws)})

    def snapshot(self) -> dict[str, Any]:
        return {
            "modals": {u: [r.to_state(self.ws) for r in s] for u, s in self.stacks.items()},
            "homes": {u: r.to_state(self.ws) for u, r in self.homes.items()},
        }
