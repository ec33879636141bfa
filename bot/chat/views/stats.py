"""``/hello stats``: the four delivery figures, the failed changes, and what the audit trail covers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.chat.views import kit

FIGURES = (("deployments", "Deployment frequency"), ("failure_rate", "Change failure rate"),
           ("restore", "Time to restore"), ("lead", "Request to live"))
FAILURES_SHOWN = 10


def blocks(figures: Mapping[str, str], failures: Sequence[str], coverage: str, *, days: int,
           service: str = "") -> list[dict]:
    """``figures`` in words by key (``bot.observe.delivery.figures``), a line per failed change."""
    of = f" of {service}" if service else ""
    more = f"\n…and {len(failures) - FAILURES_SHOWN} more" if len(failures) > FAILURES_SHOWN else ""
    return kit.blocks(
        kit.header(f"Delivery{of}, last {days} days"),
        kit.section(fields=[f"*{title}*\n{figures[key]}" for key, title in FIGURES]),
        kit.section("*Failed changes*\n" + "\n".join(failures[:FAILURES_SHOWN]) + more) if failures else None,
        kit.context(coverage),
    )
