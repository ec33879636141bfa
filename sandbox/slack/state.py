"""In-memory state of the emulated Slack workspace: users, channels, messages, files, events.

Everything here is plain data and synchronous; the HTTP layers in ``webapi.py`` and ``client.py``
mutate it, and every mutation is announced to subscribers (in-process callbacks, the SSE stream,
``wait_for`` waiters).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_USERS: list[dict[str, Any]] = [
    {"id": "U1", "name": "dana", "real_name": "Dana Deployer"},
    {"id": "U2", "name": "avery", "real_name": "Avery Approver"},
    {"id": "U3", "name": "sam", "real_name": "Sam Spectator"},
]
DEFAULT_CHANNELS: dict[str, str] = {"C1": "ops", "C2": "general"}
DEFAULT_USERGROUPS: dict[str, list[str]] = {"S1": ["U2"]}
DEFAULT_USERGROUP_HANDLES: dict[str, str] = {"S1": "release-approvers"}

Event = dict[str, Any]
Listener = Callable[[Event], Any]


class TsClock:
    """Hands out Slack-style timestamps ("1700000000.000100"): unique and strictly increasing."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        micros = max(int(time.time() * 1_000_000), self._last + 1)
        self._last = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass
class Channel:
    id: str
    name: str
    members: set[str]
    bot_is_member: bool = True
    created: int = field(default_factory=lambda: int(time.time()))

    def to_api(self, bot_user_id: str) -> dict[str, Any]:
        """The channel as ``conversations.info`` returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": False,
            "is_archived": False,
            "is_general": self.name == "general",
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": self.bot_is_member,
            "created": self.created,
            "creator": "",
            "num_members": len(self.members | ({bot_user_id} if self.bot_is_member else set())),
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


@dataclass
class Edit:
    """One ``chat.update`` (or ``replace_original``): the content the message had *before* it."""

    edited_ts: str
    text: str
    blocks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]


@dataclass
class Message:
    """A channel message with its current content and its edit history."""

    channel: str
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    bot_id: str | None = None
    app_id: str | None = None
    team: str | None = None
    thread_ts: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    reply_count: int = 0
    reply_users: list[str] = field(default_factory=list)
    latest_reply: str | None = None
    parent_user_id: str | None = None
    deleted: bool = False
    source: str = "api"

    def to_api(self) -> dict[str, Any]:
        """The message as Slack's API returns it (``message`` in answers, payloads and history)."""
        out: dict[str, Any] = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts}
        if self.bot_id:
            out["bot_id"] = self.bot_id
            out["app_id"] = self.app_id
        if self.team:
            out["team"] = self.team
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.files:
            out["files"] = copy.deepcopy(self.files)
            out["upload"] = True
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
            if self.parent_user_id:
                out["parent_user_id"] = self.parent_user_id
        if self.reply_count:
            out["reply_count"] = self.reply_count
            out["reply_users"] = list(self.reply_users)
            out["reply_users_count"] = len(self.reply_users)
            out["latest_reply"] = self.latest_reply
        if self.edits:
            out["edited"] = {"user": self.user, "ts": self.edits[-1].edited_ts}
        return out

    def to_state(self) -> dict[str, Any]:
        """Everything the emulator knows, edit history included (for tests and the console)."""
        out = self.to_api()
        out.update(
            channel=self.channel,
            deleted=self.deleted,
            source=self.source,
            edits=[asdict(e) for e in self.edits],
        )
        return out


@dataclass
class Ephemeral:
    """A message only ``user`` sees (postEphemeral, slash-command answers, response_url posts)."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    edits: list[Edit] = field(default_factory=list)
    deleted: bool = False
    source: str = "api"
    bot_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "subtype": "bot_message", "text": self.text, "ts": self.ts}
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        return out

    def to_state(self) -> dict[str, Any]:
        out = self.to_api()
        out.update(
            channel=self.channel,
            user=self.user,
            ephemeral=True,
            deleted=self.deleted,
            source=self.source,
            edits=[asdict(e) for e in self.edits],
        )
        return out


@dataclass
class FileRecord:
    """A file from ``files.getUploadURLExternal`` onwards; ``data`` is None until bytes arrive."""

    id: str
    name: str
    length: int
    user: str
    created: int
    title: str = ""
    alt_txt: str | None = None
    snippet_type: str | None = None
    data: bytes | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None
    mimetype: str = "application/octet-stream"
    base_url: str = ""

    @property
    def filetype(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary"

    def to_api(self) -> dict[str, Any]:
        """The file object as files.completeUploadExternal / message ``files`` carry it."""
        url = f"{self.base_url}/files-pri/{self.id}/{self.name}"
        out: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "pretty_type": self.filetype.upper(),
            "user": self.user,
            "size": len(self.data) if self.data is not None else self.length,
            "mode": "hosted",
            "is_external": False,
            "is_public": bool(self.channels),
            "url_private": url,
            "url_private_download": f"{url}?download=1",
            "permalink": f"{self.base_url}/files/{self.user}/{self.id}/{self.name}",
            "channels": list(self.channels),
            "groups": [],
            "ims": [],
        }
        if self.alt_txt:
            out["alt_txt"] = self.alt_txt
        return out


@dataclass
class ResponseTarget:
    """Where a ``response_url`` leads: the channel, the user who acted and the message that carried it."""

    id: str
    channel: str
    user: str
    message_ts: str | None = None
    is_ephemeral: bool = False
    thread_ts: str | None = None
    uses: int = 0
    created: float = field(default_factory=time.time)


class Workspace:
    """The workspace's data and change notification; no I/O."""

    def __init__(
        self,
        *,
        team_id: str,
        team_domain: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        users: Iterable[dict[str, Any]],
        channels: dict[str, str],
        usergroups: dict[str, list[str]],
        bot_channels: Iterable[str] | None,
        channel_members: dict[str, list[str]] | None,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.base_url = ""
        self.users: dict[str, dict[str, Any]] = {u["id"]: dict(u) for u in users}
        self.usergroups = {k: list(v) for k, v in usergroups.items()}
        bot_set = None if bot_channels is None else set(bot_channels)
        members = channel_members or {}
        self.channels: dict[str, Channel] = {
            cid: Channel(
                id=cid,
                name=name.lstrip("#"),
                members=set(members.get(cid, self.users.keys())),
                bot_is_member=bot_set is None or cid in bot_set,
            )
            for cid, name in channels.items()
        }
        self.clock = TsClock()
        self._messages: dict[str, list[Message]] = {cid: [] for cid in self.channels}
        self._ephemerals: dict[str, list[Ephemeral]] = {cid: [] for cid in self.channels}
        self.files: dict[str, FileRecord] = {}
        self.response_targets: dict[str, ResponseTarget] = {}
        self.response_posts: list[dict[str, Any]] = []
        self._file_ids = itertools.count(1)
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        self.version = 0

    # ---- look-ups -------------------------------------------------------------------------
    def resolve_channel(self, ref: str | None) -> Channel | None:
        """A channel by ID, ``#name`` or ``name``, as chat.postMessage accepts them."""
        if not ref:
            return None
        if ref in self.channels:
            return self.channels[ref]
        name = ref.lstrip("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def find_message(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self._messages.get(channel, []) if m.ts == ts and not m.deleted), None)

    def find_ephemeral(self, channel: str, ts: str) -> Ephemeral | None:
        return next((e for e in self._ephemerals.get(channel, []) if e.ts == ts and not e.deleted), None)

    def user_api(self, user_id: str) -> dict[str, Any]:
        """A user as ``users.info`` returns it."""
        u = self.users[user_id]
        real = u.get("real_name", u["name"])
        return {
            "id": u["id"],
            "team_id": self.team_id,
            "name": u["name"],
            "deleted": False,
            "real_name": real,
            "tz": u.get("tz", "Europe/London"),
            "tz_label": u.get("tz_label", "Greenwich Mean Time"),
            "tz_offset": u.get("tz_offset", 0),
            "is_admin": u.get("is_admin", False),
            "is_owner": u.get("is_owner", False),
            "is_bot": u.get("is_bot", False),
            "is_app_user": False,
            "updated": 1700000000,
            "profile": {
                "real_name": real,
                "display_name": u.get("display_name", u["name"]),
                "real_name_normalized": real,
                "display_name_normalized": u.get("display_name", u["name"]),
                "email": u.get("email", f"{u['name']}@example.org"),
                "team": self.team_id,
            },
        }

    # ---- reads ----------------------------------------------------------------------------
    def messages(self, channel: str, *, include_deleted: bool = False) -> list[Message]:
        return [m for m in self._messages.get(channel, []) if include_deleted or not m.deleted]

    def ephemerals(self, channel: str, user: str | None = None) -> list[Ephemeral]:
        return [e for e in self._ephemerals.get(channel, []) if not e.deleted and (user is None or e.user == user)]

    def all_items(self) -> list[Message | Ephemeral]:
        items: list[Message | Ephemeral] = []
        for cid in self.channels:
            items.extend(self.messages(cid))
            items.extend(self.ephemerals(cid))
        return items

    def snapshot(self) -> dict[str, Any]:
        """The whole workspace as JSON-ready data (``GET /_emulator/state``)."""
        return {
            "team": {"id": self.team_id, "domain": self.team_domain},
            "bot": {"user_id": self.bot_user_id, "bot_id": self.bot_id, "app_id": self.app_id},
            "users": [self.user_api(uid) for uid in self.users],
            "usergroups": {k: list(v) for k, v in self.usergroups.items()},
            "channels": [
                {"id": c.id, "name": c.name, "members": sorted(c.members), "bot_is_member": c.bot_is_member}
                for c in self.channels.values()
            ],
            "messages": {cid: [m.to_state() for m in self.messages(cid)] for cid in self.channels},
            "ephemerals": {cid: [e.to_state() for e in self.ephemerals(cid)] for cid in self.channels},
            "files": [f.to_api() for f in self.files.values() if f.data is not None],
            "response_posts": list(self.response_posts),
        }

    # ---- writes ---------------------------------------------------------------------------
    def add_message(self, msg: Message) -> Message:
        if msg.thread_ts:
            parent = self.find_message(msg.channel, msg.thread_ts)
            if parent is not None and parent.thread_ts and parent.thread_ts != parent.ts:
                parent = self.find_message(msg.channel, parent.thread_ts)
            if parent is not None:
                msg.thread_ts = parent.ts
                msg.parent_user_id = parent.user
                parent.thread_ts = parent.ts
                parent.reply_count += 1
                if msg.user not in parent.reply_users:
                    parent.reply_users.append(msg.user)
                parent.latest_reply = msg.ts
        self._messages.setdefault(msg.channel, []).append(msg)
        self.emit({"type": "message_posted", "channel": msg.channel, "message": msg.to_state()})
        return msg

    def edit_message(
        self,
        msg: Message | Ephemeral,
        *,
        text: str | None,
        blocks: list[dict[str, Any]] | None,
        attachments: list[dict[str, Any]] | None,
    ) -> None:
        """Replace content; fields given as None keep their value (chat.update's rule)."""
        msg.edits.append(
            Edit(
                edited_ts=self.clock.next(),
                text=msg.text,
                blocks=copy.deepcopy(msg.blocks),
                attachments=copy.deepcopy(msg.attachments),
            )
        )
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = blocks
        if attachments is not None:
            msg.attachments = attachments
        kind = "ephemeral_updated" if isinstance(msg, Ephemeral) else "message_updated"
        self.emit({"type": kind, "channel": msg.channel, "message": msg.to_state()})

    def delete_message(self, msg: Message | Ephemeral) -> None:
        msg.deleted = True
        kind = "ephemeral_deleted" if isinstance(msg, Ephemeral) else "message_deleted"
        self.emit({"type": kind, "channel": msg.channel, "ts": msg.ts})

    def add_ephemeral(self, eph: Ephemeral) -> Ephemeral:
        self._ephemerals.setdefault(eph.channel, []).append(eph)
        self.emit({"type": "ephemeral_posted", "channel": eph.channel, "message": eph.to_state()})
        return eph

    def new_file(self, **kwargs: Any) -> FileRecord:
        fid = f"F{next(self._file_ids):010d}"
        rec = FileRecord(id=fid, created=int(time.time()), base_url=self.base_url, **kwargs)
        self.files[fid] = rec
        return rec

    # ---- notification ---------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on every change; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: Event) -> None:
        self.version += 1
        event = {"seq": self.version, **event}
        for listener in list(self._listeners):
            listener(event)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_until(self, check: Callable[[], Any], timeout: float) -> Any:
        """The first truthy ``check()``, evaluated at once and after every change.

        Raises ``TimeoutError`` when it stayed falsy for ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                found = check()
                if found:
                    return found
                await changed.wait()

    async def wait_for(
        self,
        predicate: Callable[[Message | Ephemeral], bool],
        timeout: float,
    ) -> Message | Ephemeral:
        """The first current message or ephemeral satisfying ``predicate``, waiting for changes.

        Raises ``TimeoutError`` when none matched within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                for item in self.all_items():
                    if predicate(item):
                        return item
                await changed.wait()
