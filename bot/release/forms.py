"""Opening the deploy and canary forms: the modal, with a choice of the versions the stable Deployment ran
recently (its ReplicaSet history, newest first, the running one marked)."""

from __future__ import annotations

from bot.chat import forms
from bot.chat.contract import Context, Reply
from bot.core.errors import CommandError, DependencyUnavailable
from bot.release.actions import revisions


async def open_form(ctx: Context, command: str) -> Reply | None:
    """Open ``command``'s form with the versions the stable Deployment ran recently; ``None`` when open."""
    invocation = ctx.invocation
    if not invocation.trigger_id:
        raise CommandError(f"Give a version: `/hello {command} <version>` (no form can be opened from here).")
    recent: list[str] = []
    running = ""
    try:
        current, history = await revisions(await ctx.cluster(), ctx.config.stable_deployment, ctx.config)
        recent = [r.version for r in reversed(history) if r.version]  # newest first
        running = next((r.version for r in history if r.number == current), "")
    except DependencyUnavailable:
        pass  # the form works without the list: the version is typed
    form = forms.view(command, invocation.channel_id, recent, running=running,
                      require_reason=ctx.config.require_reason)
    await ctx.services.messenger.open_view(invocation.trigger_id, form)
    return None
