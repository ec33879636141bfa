"""Who may do what: deployers, approvers, readers, admins and the channels where changes may be made.

Entries are Slack user ids (``U…``/``W…``) or user-group ids (``S…``); group membership comes from
``usergroups.users.list`` through a :class:`GroupResolver`, cached for a short while.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.core.config import Config
from bot.core.errors import PermissionDenied

log = logging.getLogger(__name__)

GroupFetcher = Callable[[str], Awaitable[Sequence[str]]]


class GroupResolver:
    """Caches user-group membership for ``ttl`` seconds. An unreachable Slack means 'not a member'."""

    def __init__(self, fetch: GroupFetcher, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = asyncio.Lock()

    async def members(self, group: str) -> frozenset[str]:
        now = self._clock()
        cached = self._cache.get(group)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        async with self._lock:
            cached = self._cache.get(group)
            if cached and self._clock() - cached[0] < self._ttl:
                return cached[1]
            try:
                users = frozenset(await self._fetch(group))
            except Exception as exc:  # Slack down: fail closed, do not cache
                log.warning("cannot read members of user group %s: %s", group, exc)
                return frozenset()
            self._cache[group] = (self._clock(), users)
            return users


@dataclass
class Policy:
    config: Config
    groups: GroupResolver | None = None

    async def _in(self, user: str, entries: Sequence[str]) -> bool:
        if user in entries:
            return True
        for entry in entries:
            if entry.startswith("S") and self.groups is not None and user in await self.groups.members(entry):
                return True
        return False

    async def check_read(self, user: str) -> None:
        if self.config.readers and not await self._in(user, self.config.readers):
            raise PermissionDenied(
                f"<@{user}> is not allowed to use read-only commands here: only the users and groups in "
                "HELLO_READERS may."
            )

    async def check_change(self, user: str, channel: str, what: str = "make changes") -> None:
        """Raise :class:`PermissionDenied` unless ``user`` may ask for a change from ``channel``."""
        cfg = self.config
        if not cfg.deployers:
            raise PermissionDenied(
                f"Nobody may {what} yet: no deployers are configured. Set HELLO_DEPLOYERS to the Slack user ids "
                "(U…) or user-group ids (S…) allowed to, and HELLO_APPROVERS to who may approve."
            )
        self.check_channel(channel)
        if not await self._in(user, cfg.deployers):
            raise PermissionDenied(f"<@{user}> is not a deployer, so cannot {what} (HELLO_DEPLOYERS).")

    async def is_admin(self, user: str) -> bool:
        """Whether ``user`` is one of ``HELLO_ADMINS`` (by id or user group): may hold and lift ``all``."""
        return bool(self.config.admins) and await self._in(user, self.config.admins)

    def check_channel(self, channel: str, what: str = "requested") -> None:
        """Raise :class:`PermissionDenied` unless changes may be ``what`` in ``channel`` (HELLO_OPS_CHANNELS)."""
        cfg = self.config
        if cfg.ops_channels and channel not in cfg.ops_channels:
            allowed = ", ".join(f"<#{c}>" for c in cfg.ops_channels)
            raise PermissionDenied(f"Changes can only be {what} in {allowed} (HELLO_OPS_CHANNELS).")

    async def can_approve(self, user: str, requester: str) -> tuple[bool, str]:
        """Whether ``user`` may approve a request made by ``requester``, and why not."""
        cfg = self.config
        if not cfg.approvers:
            return False, "No approvers are configured (HELLO_APPROVERS), so nobody can approve."
        if not await self._in(user, cfg.approvers):
            return False, "Only approvers can approve or reject this request."
        if user == requester and not cfg.self_approval:
            return False, "You cannot approve your own request (HELLO_SELF_APPROVAL is off)."
        return True, ""
