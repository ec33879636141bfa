"""``/hello status``: one service in one environment (tracks, certificate, warnings, alerts, traffic,
dashboards), and the overview of several with a select to open one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat.contract import DETAILS
from bot.chat.views import kit
from bot.core.text import escape


@dataclass(frozen=True)
class Track:
    """A Deployment of the service as status shows it (``version`` escaped already)."""

    name: str  # "stable" | "canary"
    version: str
    ready: int
    desired: int
    share: str  # "rest of traffic", "10% of traffic", "not running"
    stuck: bool = False


@dataclass(frozen=True)
class Cert:
    name: str
    ready: bool
    days: int | None  # None: no expiry known
    not_after: str  # formatted
    renewal: str


@dataclass(frozen=True)
class Rate:
    """One version's traffic over the range (``version`` escaped already; figures formatted)."""

    version: str
    rate: str
    success: str
    p99: str


@dataclass(frozen=True)
class Status:
    """What ``/hello status`` shows. The bot's own mrkdwn; errors, warnings and events from elsewhere are
    escaped here (``alerts`` lines already are)."""

    service: str
    namespace: str
    range: str
    checked: str
    cluster_error: str = ""
    tracks: tuple[Track, ...] = ()
    cert: Cert | None = None
    warnings: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    metrics_error: str = ""
    no_traffic: bool = False
    versions: tuple[Rate, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (label, url): dashboards
    alerts: tuple[str, ...] = ()  # one line per firing group
    alerts_more: int = 0
    alerts_error: str = ""


def truncate(text: str, length: int) -> str:
    """At most about ``length`` characters, cut at a word and marked ``...`` (5 characters of leeway)."""
    if len(text) <= length + 5:
        return text
    return text[: length - 3].rsplit(" ", 1)[0] + "..."


def _track(t: Track) -> str:
    return (f"*{t.name.capitalize()}*  `{t.version}`\n{t.ready}/{t.desired} ready · {t.share}"
            + (" · :rotating_light: stuck" if t.stuck else ""))


def _cert(c: Cert) -> str:
    expiry = (f"{c.days} days left, expires {c.not_after}, renews {c.renewal}" if c.days is not None
              else "no expiry known")
    return f"*Certificate* `{c.name}`: {expiry}" + ("" if c.ready else " · not ready")


def _release(s: Status) -> list[kit.Block]:
    if s.cluster_error:
        return [kit.section(f":x: *Cluster unavailable:* {escape(s.cluster_error)}")]
    out: list[kit.Block] = []
    if s.tracks:
        out.append(kit.section(fields=[_track(t) for t in s.tracks]))
    if s.cert is not None:
        out.append(kit.section(_cert(s.cert)))
    return out


def _problems(s: Status) -> list[kit.Block]:
    out: list[kit.Block] = []
    if s.warnings:
        out.append(kit.section(":warning: *Warnings*\n" + "\n".join(truncate(escape(w), 280) for w in s.warnings)))
    if s.alerts:
        more = f"\n… and {s.alerts_more} more" if s.alerts_more else ""
        out.append(kit.section(":rotating_light: *Firing alerts*\n" + "\n".join(s.alerts) + more))
    elif s.alerts_error:
        out.append(kit.context(escape(s.alerts_error)))
    if s.events:
        out.append(kit.context("*Recent warning events*\n" + "\n".join(truncate(escape(e), 300) for e in s.events)))
    return out


def _traffic(s: Status) -> kit.Block | None:
    if s.metrics_error:
        return kit.section(f":chart_with_downwards_trend: {escape(s.metrics_error)}")
    if s.no_traffic:
        return kit.section(f"No traffic in the last {s.range}.")
    if s.versions:
        return kit.section(f"*Last {s.range}*", fields=[f"`{v.version}`  {v.rate} · {v.success} ok · p99 {v.p99}"
                                                         for v in s.versions[:10]])
    return None


def parts(s: Status, *, running: Sequence[str] = ()) -> list[kit.Block]:
    """The status's blocks, for a message that holds it (the status message, a scheduled post)."""
    links = [kit.button(label, f"link_{n}", url=url) for n, (label, url) in enumerate(s.links, 1)]
    traffic = _traffic(s)
    return [
        kit.header(f"{s.service} in {s.namespace}"),
        *_release(s),
        *_problems(s),
        kit.divider(),
        *([traffic] if traffic is not None else []),
        *([kit.actions(links)] if links else []),
        *([running_section(running)] if running else []),
        kit.context(f"Checked {s.checked}"),
    ]


def blocks(s: Status, *, running: Sequence[str] = ()) -> list[dict]:
    """The status message; ``running``: a line per release running now, shown above the time of the check."""
    return kit.blocks(parts(s, running=running))


def running_section(lines: Sequence[str]) -> kit.Block:
    """The releases running now, one line each."""
    return kit.section("*Running now*\n" + "\n".join(lines))


def overview(lines: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[dict]:
    """One line per service and environment, and a select that shows one of them (``DETAILS``: the first
    :data:`~bot.chat.views.kit.OPTIONS`, as many as Slack's select takes)."""
    text = "Services\n" + "\n".join(lines)
    options = [kit.option(f"{service} · {env}", f"{service} {env}") for service, env in pairs[:kit.OPTIONS]]
    return kit.blocks(
        kit.section(text),
        kit.actions([kit.select(DETAILS, options, "Details of…")], block_id=DETAILS),
        kit.context("Details: choose one, or `/hello status <service> [<environment>]`"),
    )
