"""A scheduled status post: which schedule and slot, every service in a line, the status, what changed."""

from __future__ import annotations

from dataclasses import dataclass

from bot.chat.views import kit, status

CHANGES_SHOWN = 15


@dataclass(frozen=True)
class Digest:
    """What a scheduled post says besides the status (the bot's own mrkdwn; ``changes_error`` and the
    change lines escaped already)."""

    id: str
    cron: str
    timezone: str
    range: str
    slot: str  # formatted
    since: str  # formatted: the previous post, or the range before the slot
    changes: tuple[str, ...] = ()  # a line per change since
    changes_error: str = ""
    delivery: str = ""  # a week or more: one line of delivery figures
    catch_up: bool = False  # posted late
    skipped: int = 0  # earlier slots left out when posting late
    services: tuple[str, ...] = ()  # several services: a line each


def _late(d: Digest) -> str:
    skipped = (f" — {d.skipped} earlier slot{'s' if d.skipped != 1 else ''} skipped, only the most recent is posted"
               if d.skipped else "")
    return f":hourglass: *Posted late:* this slot came due while no replica was posting{skipped}."


def _changes(d: Digest) -> list[kit.Block]:
    out: list[kit.Block] = [kit.divider()]
    if d.changes:
        more = f"\n…and {len(d.changes) - CHANGES_SHOWN} more" if len(d.changes) > CHANGES_SHOWN else ""
        out.append(kit.section(f"*Changes since {d.since}*\n" + "\n".join(d.changes[:CHANGES_SHOWN]) + more))
    else:
        out.append(kit.context(f"No changes since {d.since}."))
    if d.delivery:
        out.append(kit.context(f"{d.delivery} · `/hello stats` for more"))
    if d.changes_error:
        out.append(kit.context(f":warning: changes unavailable: {d.changes_error}"))
    return out


def blocks(d: Digest, body: status.Status) -> list[dict]:
    """The post: its schedule, the services (several), the status ``body``, the changes since."""
    return kit.blocks(
        kit.context(f":calendar: Scheduled status `{d.id}` · `{d.cron}` ({d.timezone}) · slot {d.slot} · "
                    f"last {d.range}"),
        kit.section(_late(d)) if d.catch_up else None,
        kit.section("*Services*\n" + "\n".join(d.services)) if d.services else None,
        status.parts(body),
        _changes(d),
    )
