"""Delivery metrics from the audit trail: deployment frequency, change failure rate, time to restore, request to live.

`/hello stats [7d|30d|90d]` (default 30d) answers with the four figures and posts a chart (deployments and
failed changes per day, request-to-live time per deployment):

- *deployment frequency*: deploys and canary promotions that succeeded, a week and a day;
- *change failure rate*: of the deploys, promotions and canaries of a new version that ended in the range,
  the share that failed: the release failed (a failed rollout, a canary aborted by its analysis, a critical
  alert in the bake window) or the next change of that track was an approved rollback or canary abort;
- *time to restore*: median from a failure to the next success of that track (what the bot undid itself
  in the same release is counted apart, without a duration);
- *request to live*: median from a deploy's or promotion's request to its success (approval, rollout and
  bake window included).

With several services (HELLO_SERVICES) the figures cover them all, in every environment; `/hello stats <service>`
(or `/hello stats` in a service's own channel) covers that one service, in all its environments.

The figures cover what the audit trail in the cluster still holds: Kubernetes Events expire (one hour by
default), so the answer says since when it has records; the JSON audit log lines are the durable record.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat import views
from bot.chat.views import stats as stats_view
from bot.core import args as checks
from bot.core import times
from bot.core.config import Config
from bot.core.durations import duration
from bot.core.errors import CommandError, UsageError
from bot.observe import delivery
from commands import Command, Context, Reply, Upload

NAME = "stats"
USAGE = "/hello stats [<service>] [7d|30d|90d]"
DEFAULT = "30d"
SERVICE = re.compile(r"[a-z][a-z0-9-]{0,62}", re.ASCII)  # a catalogue service's name (a range starts with a digit)


@dataclass(frozen=True)
class Request:
    range: str = DEFAULT
    service: str = ""  # "" : every service (or the channel's own); checked against the catalogue by run()
    mutating: bool = False


def parse(args: Sequence[str], config: Config) -> Request:
    service = ""
    if args and SERVICE.fullmatch(args[0]) and args[0].lower() not in delivery.RANGES:
        service, args = args[0], args[1:]
    if len(args) > 1:
        raise UsageError("stats takes at most a service and a range", USAGE)
    if args:
        rng = args[0].lower()
        if rng not in delivery.RANGES:
            raise UsageError(f"unknown range {checks.shown(args[0])}: use one of {', '.join(delivery.RANGES)}", USAGE)
        return Request(range=rng, service=service)
    return Request(service=service)


def _service(request: Request, ctx: Context) -> str:
    """The one service the figures are about ("" for all): named, else the channel's own when it has one."""
    services = ctx.services
    if not services.targets.named or services.catalogue is None:
        if request.service:
            raise UsageError("there is one service here: `/hello stats [7d|30d|90d]`", USAGE)
        return ""
    if request.service:
        try:
            return services.catalogue.service(request.service).name
        except UsageError as exc:
            raise UsageError(str(exc), USAGE) from None
    here = services.catalogue.in_channel(ctx.invocation.channel_id)
    return here[0].name if len(here) == 1 else ""


def coverage(d: delivery.Delivery) -> str:
    """Where the figures come from, and how far back the trail reaches."""
    since = ("the audit trail holds no records" if d.covered_since is None else
             f"the audit trail holds records since {views.when(d.covered_since)}")
    note = " — the figures cover only that part of the range" if d.partial and d.covered_since else ""
    return (f"From the audit trail (the cluster's Events, source hello-chatops): {since}{note}. Events expire; "
            "the JSON audit log lines are the durable record. `/hello help stats` says what counts.")


def failure_lines(d: delivery.Delivery) -> list[str]:
    lines = []
    for o in sorted((o for o in d.outcomes if o.failed), key=lambda o: o.release.first, reverse=True):
        r = o.release
        # the trail is read back from Events, which anyone with access to the namespace can write
        verb = views.foreign(r.verb.lower(), 20)
        what = f"{verb} `{views.foreign(r.version, 40)}`" if r.version else verb
        when = views.when(r.ended or r.first, "%m-%d %H:%M")
        if o.automatic:
            restored = ""
        elif o.restored_at and o.failed_at:
            restored = f", restored in {duration((o.restored_at - o.failed_at).total_seconds(), compact=True)}"
        else:
            restored = ", not restored yet"
        lines.append(f"• `{when}` {what}: {o.how}{restored} (request `{views.foreign(r.request_id, 40)}`)")
    return lines


async def run(request: Request, ctx: Context) -> Reply:
    audit = ctx.services.audit
    if audit is None:
        raise CommandError("There is no audit trail on this bot: nothing to measure.")
    days = delivery.RANGES[request.range]
    only = _service(request, ctx)
    if ctx.services.targets.named:  # every service's audit trail, each in its own namespace
        entries, problems = await audit.everywhere()
        if entries is None:
            raise CommandError("No audit trail could be read: " + "; ".join(problems))
        if only:
            entries = [e for e in entries if e.service == only]
    else:
        entries = await audit.entries()
    d = delivery.compute(entries, end=times.now(), days=days)
    figures = delivery.figures(d)
    blocks = stats_view.blocks(figures, failure_lines(d), coverage(d), days=days, service=only)
    of = f" of {only}" if only else ""
    text = (f"Delivery{of}, last {days} days: {figures['deployments']}; change failure rate {figures['failure_rate']}; "
            f"time to restore {figures['restore']}; request to live {figures['lead']}")
    reply = Reply(text=text, blocks=blocks)
    service = only or ("all services" if ctx.services.targets.named else ctx.config.stable_deployment)

    async def chart() -> list[Upload]:
        from bot.observe import delivery_chart

        png = await delivery_chart.render_async(d, service=service)
        return [Upload(filename=f"delivery-{request.range}.png", content=png,
                       title=f"{service} delivery, last {days} days (UTC)")]

    reply.followup = chart
    return reply


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run)
