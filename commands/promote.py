"""Promote what runs in one environment to another: the exact image, once it has soaked, after approval.

`/hello promote <service> <from-env> <to-env> ["<reason>"]` (e.g. `/hello promote greeter staging production
"soaked over the weekend"`) asks to set the stable Deployment in `<to-env>` to the image that runs in
`<from-env>`: pinned to its digest (`<repository>:<tag>@sha256:…`) when every ready pod of the source's current
ReplicaSet reports the same one, else the image reference as it is (the request says so).

It is refused, saying why, unless the version has run in `<from-env>` for the service's `soak_minutes` (counted
from the end of the deploy, promotion or rollback that put it there, else from its ReplicaSet's creation), with
no failed release, failed canary analysis or aborted canary of that version there since, and no critical alert
of the service in `<from-env>` firing (when `HELLO_ALERTMANAGER_URL` is set; the alerts a bake window there
counts; an Alertmanager that cannot be asked refuses too). The change then goes through the same approvals,
locks and freezes as a deploy to `<to-env>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import args as checks
from bot.core.config import Config
from bot.core.errors import CommandError, DependencyUnavailable, UsageError
from bot.core.text import foreign
from bot.observe.critical import critical_alerts
from bot.release import promotion
from commands import Command, Context, Reply

NAME = "promote"
USAGE = '/hello promote <service> <from-env> <to-env> ["<reason>"]'
EXAMPLE = '/hello promote greeter staging production "soaked over the weekend"'


@dataclass(frozen=True)
class Request:
    service: str
    source: str
    target: str
    reason: str = ""
    mutating: bool = True


def parse(args: Sequence[str], config: Config) -> Request:
    if len(args) < 3:
        raise UsageError(f"name the service, the environment to promote from and the one to promote to: "
                         f"`{EXAMPLE}`", USAGE)
    service, source, target = args[0], args[1], args[2]
    if source == target:
        raise UsageError(f"promote from one environment to another, not from {checks.shown(source)} to itself",
                         USAGE)
    return Request(service=service, source=source, target=target,
                   reason=checks.reason(args[3:], config, USAGE, example=EXAMPLE))


def change_scope(request: Request) -> tuple[str, str]:
    """The service and environment the change is made in: the target's deployers and channels decide, as for a
    deploy there (the dispatcher checks them before :func:`run`)."""
    return request.service, request.target


async def run(request: Request, ctx: Context) -> Reply | None:
    services = ctx.services
    assert services.catalogue is not None
    try:
        service = services.catalogue.service(request.service)
        source_env, target_env = service.environment(request.source), service.environment(request.target)
    except UsageError as exc:
        raise UsageError(str(exc), USAGE) from None
    origin = services.targets.resolve(service.name, source_env.name)
    source_config, target_config = origin.config, ctx.where.config  # the dispatcher resolved the target (change_scope)
    where = f"{service.name} from {source_env.name} to {target_env.name}"

    source = await promotion.running(await origin.cluster(), source_config)
    if not source.rolled_out or source.ready == 0:
        raise CommandError(f"Not promoted ({where}): `{source.deployment}` in {source_env.name} is still rolling out "
                           f"({source.ready}/{source.desired} ready); promote it once it has rolled out.")
    entries = await services.audit.entries(origin) if services.audit is not None else []
    clock = services.approvals.clock
    soaked = promotion.soak(source, entries, minutes=service.soak_minutes, now=clock(), environment=source_env.name)
    problems = list(soaked.problems)
    if source_config.alertmanager_url:
        try:
            found = await critical_alerts(origin, services.catalogue)
        except DependencyUnavailable as exc:
            raise CommandError(f"Not promoted ({where}): I cannot tell whether a critical alert fires in "
                               f"{source_env.name}: {foreign(str(exc), 200)}.") from None
        if found:
            names = ", ".join(f"`{foreign(name, 80)}`" for name in sorted({a.name for a in found}))
            problems.append(f"critical alert(s) firing for {service.name} in {source_env.name}: {names}")
        alerts = f"no critical alert fires for it in {source_env.name}"
    else:
        alerts = "critical alerts not checked: no Alertmanager is configured (HELLO_ALERTMANAGER_URL)"
    if problems:
        raise CommandError(f"Not promoted ({where}): " + "; ".join(problems) + ".")
    if not soaked.soaked:
        raise CommandError(f"Not promoted ({where}) yet: {soaked.line()}.")
    checked = [f"soaked: {soaked.line()}, since {soaked.since}; no failed release or aborted canary of it there",
               alerts]
    await ctx.propose(lambda cluster: promotion.plan_promote_environment(
        cluster, target_config, source, source_env=source_env.name, checked=checked, reason=request.reason))
    return None


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, change_scope=change_scope)
