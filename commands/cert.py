"""Show the TLS certificate, or renew it through cert-manager after approval.

- `/hello cert`: the Certificate's state: ready, expiry, renewal time, revision, failures.
- `/hello cert renew ["<reason>"]`: ask cert-manager to issue it again now, as `cmctl renew` does (the
  Certificate's `Issuing` condition set to True, reason `ManuallyTriggered`); the message follows
  the issuance and reports the new expiry, or the failure and cert-manager's back-off.

The reason is one quoted argument after `renew`, e.g. `/hello cert renew "key rotation"`; it is shown
in the approval request, the release's message, `/hello history` and the audit trail.
`HELLO_REQUIRE_REASON=true` makes it mandatory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat import views
from bot.chat.views import cert as cert_view
from bot.cluster.certificates import cert_from
from bot.core import args as checks
from bot.core import times
from bot.core.config import Config
from bot.core.errors import UsageError
from bot.release import actions
from commands import Command, Context, Reply

NAME = "cert"
USAGE = '/hello cert [renew ["<reason>"]]'
EXAMPLE = '/hello cert renew "key rotation"'


@dataclass(frozen=True)
class Request:
    renew: bool = False
    reason: str = ""

    @property
    def mutating(self) -> bool:
        return self.renew


def parse(args: Sequence[str], config: Config) -> Request:
    if not args:
        return Request()
    if args[0].lower() == "renew":
        return Request(renew=True, reason=checks.reason(args[1:], config, USAGE, example=EXAMPLE))
    raise UsageError(f"unknown cert argument {checks.shown(' '.join(args))}", USAGE)


async def run(request: Request, ctx: Context) -> Reply | None:
    config = ctx.config
    if request.renew:
        await ctx.propose(lambda cluster: actions.plan_renew(cluster, config, reason=request.reason))
        return None
    cluster = await ctx.cluster()
    cert = cert_from(await cluster.certificates.get())
    now = times.now()
    days = cert.days_left(now)
    backoff = actions.backoff_until(cert)
    blocks = cert_view.blocks(cert, days=None if days is None else int(days),
                              backoff=backoff if backoff and backoff > now else None,
                              checked=views.when(now, "%Y-%m-%d %H:%M:%S UTC"))
    state = "ready" if cert.ready else f"not ready ({views.foreign(cert.reason or 'unknown', 80)})"
    expires = views.when(cert.not_after)
    return Reply(text=f"Certificate {cert.name}: {state}, expires {expires}, revision {cert.revision}", blocks=blocks)


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, targeted=True)
