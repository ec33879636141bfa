"""Opening the deploy and canary forms: the modal, with a choice of the versions the stable Deployment ran
recently (its ReplicaSet history, newest first, the running one marked).

With several services the form is for the service and environment the command resolved, and the versions
are that service's; where nothing determined the service (a channel of none, or of several) the form
offers the service / environment pairs this person may change from that channel, and the version is typed.
"""

from __future__ import annotations

from bot.chat.contract import CHOOSE, Context, Reply
from bot.chat.messenger import TRIGGER_EXPIRED
from bot.chat.views import form as form_view
from bot.core.errors import CommandError, DependencyUnavailable, PermissionDenied, SlackError
from bot.release.actions import revisions


async def open_form(ctx: Context, command: str) -> Reply | None:
    """Open ``command``'s form with the versions the stable Deployment ran recently; ``None`` when open."""
    invocation = ctx.invocation
    if not invocation.trigger_id:
        raise CommandError(f"Give a version: `/hello {command} <version>` (no form can be opened from here).")
    recent: list[str] = []
    running = ""
    pairs: list[tuple[str, str]] = []
    if ctx.service == CHOOSE:
        pairs = await _choices(ctx, command)
    else:
        try:
            current, history = await revisions(await ctx.cluster(), ctx.config.stable_deployment, ctx.config)
            recent = [r.version for r in reversed(history) if r.version]  # newest first
            running = next((r.version for r in history if r.number == current), "")
        except DependencyUnavailable:
            pass  # the form works without the list: the version is typed
    target = ctx.service if ctx.service != CHOOSE else ""
    form = form_view.modal(command, invocation.channel_id, recent, running=running,
                           require_reason=ctx.config.require_reason, service=target,
                           environment=ctx.environment if target else "", pairs=pairs)
    try:
        await ctx.services.messenger.open_view(invocation.trigger_id, form)
    except SlackError as exc:
        if exc.error != TRIGGER_EXPIRED:
            raise
        raise CommandError(f"Slack is holding back the bot's calls and the form could not open within the 3 s "
                           f"Slack allows: type `/hello {command} <version>`, or try again in a moment.") from None
    return None


async def _choices(ctx: Context, command: str) -> list[tuple[str, str]]:
    """The service / environment pairs of the channel's services (all, in a channel of none) that this
    person may ask to change from this channel; none raises the first refusal."""
    services, invocation = ctx.services, ctx.invocation
    catalogue = services.catalogue
    assert catalogue is not None
    out: list[tuple[str, str]] = []
    refusal: PermissionDenied | None = None
    for service in catalogue.in_channel(invocation.channel_id) or catalogue.services:
        for env in service.environments:
            policy = services.targets.resolve(service.name, env.name).policy
            try:
                await policy.check_change(invocation.user_id, invocation.channel_id, f"run `{command}`")
            except PermissionDenied as exc:
                refusal = refusal or exc
                continue
            out.append((service.name, env.name))
    if not out:
        raise refusal or CommandError("The catalogue lists no service to choose from.")
    return out
