"""Post the status on a schedule: a digest with the chart and what changed since the last post.

`/hello schedule add "<cron>" [#channel] [range]` — five cron fields (minute hour day-of-month month
day-of-week) in the bot's time zone, e.g. `"0 9 * * 1-5"`; the channel defaults to this one (pick it
from the autocomplete, or give its id `C…`); the range (15m, 1h, 6h, 24h, 7d; default 1h) applies to
the metrics and the chart.
`/hello schedule list` — the schedules, when each posts next, and whether its last post failed.
`/hello schedule remove <id>` — delete a schedule made in chat.
Adding and removing need deployer rights; exactly one replica of the bot posts each slot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat import views
from bot.chat.views import notice, schedules
from bot.core import args as checks
from bot.core import times
from bot.core.config import RANGES, Config
from bot.core.cron import validate_cron
from bot.core.errors import CommandError, UsageError
from bot.core.text import foreign
from bot.observe.digest import describe_age
from bot.observe.schedule import UNREACHABLE_CHANNEL
from commands import Command, Context, Reply

NAME = "schedule"
USAGE = '/hello schedule add "<cron>" [#channel] [15m|1h|6h|24h|7d] | list | remove <id>'

_MENTION = re.compile(r"^<#([CG][A-Z0-9]+)(\|[^>]*)?>$")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]+$")
_ID = re.compile(r"^[sc][0-9a-f]{5}$")


@dataclass(frozen=True)
class Request:
    action: str  # "add" | "list" | "remove"
    cron: str = ""
    channel: str | None = None  # None: the channel the command was typed in
    range: str = "1h"
    id: str = ""

    @property
    def mutating(self) -> bool:
        return self.action in ("add", "remove")


def parse_channel(token: str) -> str | None:
    """``<#C123|name>`` (what Slack sends for a picked channel) or a bare ``C…``/``G…`` id; else ``None``."""
    match = _MENTION.match(token)
    if match:
        return match.group(1)
    if _CHANNEL_ID.match(token):
        return token
    if token.startswith("#"):
        raise UsageError(
            f"{checks.shown(token, 80)} cannot be resolved to a channel: pick the channel from the autocomplete "
            "(type `#` and choose it) or give its id (`C…`).", USAGE)
    return None


def _parse_add(args: Sequence[str]) -> Request:
    if not args:
        raise UsageError('add needs a cron expression in quotes, e.g. `"*/15 * * * *"`', USAGE)
    if " " in args[0].strip() or args[0].startswith("@"):
        cron, rest = args[0], list(args[1:])
    else:  # unquoted: the first five words are the expression
        cron, rest = " ".join(args[:5]), list(args[5:])
    cron = validate_cron(cron)
    channel: str | None = None
    rng = "1h"
    for token in rest:
        if token.lower() in RANGES:
            rng = token.lower()
            continue
        found = parse_channel(token)
        if found is None:
            raise UsageError(f"unexpected {checks.shown(token, 80)}: give a channel and/or a range "
                             f"({', '.join(RANGES)})", USAGE)
        channel = found
    return Request(action="add", cron=cron, channel=channel, range=rng)


def parse(args: Sequence[str], config: Config) -> Request:
    if not args:
        raise UsageError("schedule needs an action: add, list or remove", USAGE)
    action, rest = args[0].lower(), args[1:]
    if action == "add":
        return _parse_add(rest)
    if action in ("list", "ls"):
        if rest:
            raise UsageError("list takes no arguments", USAGE)
        return Request(action="list")
    if action in ("remove", "rm", "delete"):
        if len(rest) != 1 or not _ID.match(rest[0].lower()):
            raise UsageError("remove needs one schedule id (like `s1a2b3`, see `/hello schedule list`)", USAGE)
        return Request(action="remove", id=rest[0].lower())
    raise UsageError(f"unknown action {checks.shown(args[0])}: use add, list or remove", USAGE)


async def run(request: Request, ctx: Context) -> Reply:
    scheduler = ctx.services.schedules
    if scheduler is None:
        raise CommandError("Scheduled status posts are not running on this bot.")
    user = ctx.invocation.user_id
    tz = ctx.config.timezone
    if request.action == "add":
        channel = request.channel or ctx.invocation.channel_id
        entry = await scheduler.add(request.cron, channel, request.range, user=user)
        listed = next((item for item in await scheduler.list() if item.entry.id == entry.id), None)
        nxt = f" Next post: {views.when(listed.next)}." if listed and listed.next else ""
        text = (f"<@{user}> scheduled status posts `{entry.id}`: `{entry.cron}` ({tz}) in <#{channel}>, "
                f"last {entry.range}.{nxt}")
        return Reply(text=text, blocks=notice.blocks(text))
    if request.action == "remove":
        entry = await scheduler.remove(request.id)
        text = f"<@{user}> removed scheduled status posts `{entry.id}` (`{entry.cron}` in <#{entry.channel}>)."
        return Reply(text=text, blocks=notice.blocks(text))
    return await _list(ctx)


async def _list(ctx: Context) -> Reply:
    scheduler = ctx.services.schedules
    now = times.now()
    items = []
    lines = []
    for item in await scheduler.list():
        state = item.state
        last = f"last posted {describe_age(now, state.posted)}" if state.posted else "not posted yet"
        items.append(schedules.Schedule(
            id=item.entry.id, cron=item.entry.cron, channel=item.entry.channel, range=item.entry.range,
            source="from config" if item.entry.source == "config" else f"by <@{item.entry.created_by}>"
            if item.entry.created_by else "from chat",
            next=views.when(item.next), last=last, error=foreign(state.error, 80),
            invite=state.error in UNREACHABLE_CHANNEL,
        ))
        failed = f" — last post failed: {foreign(state.error, 80)}" if state.error else ""
        lines.append(f"{item.entry.id} {item.entry.cron} <#{item.entry.channel}>{failed}")
    leader = ""
    try:
        lease = await (await ctx.services.cluster()).leases.get(ctx.config.lease_name)
        leader = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
    except CommandError:
        pass
    blocks = schedules.listing(items, timezone=ctx.config.timezone, leader=leader)
    text = "Scheduled status posts:\n" + ("\n".join(lines) if lines else "none")
    return Reply(text=text, blocks=blocks, ephemeral=True)


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run)
