"""Put a bounded load on the service's own Services with `hey`, and report what it measured per track.

- `/hello loadtest <rps> <duration> [stable|canary|both] ["<reason>"]`: after approval, a Kubernetes Job
  runs `hey` against each chosen track's Service (not through the gateway: the traffic split is
  untouched) at `<rps>` requests per second for `<duration>` (`30s`, `2m`); the track is stable unless
  named. The message shows its progress, then each track's requests, errors (5xx), p50/p90/p99 latency
  and throughput.
- `/hello loadtest stop`: end the running load test now (its Jobs are deleted; no approval needed).

Limits: at most HELLO_LOADTEST_MAX_RPS requests per second (50) for at most HELLO_LOADTEST_MAX_SECONDS
(300); a service's `loadtest: {max_rps, max_seconds, path}` in the catalogue sets its own. The path is
HELLO_LOADTEST_PATH (`/v1/hello`). One load test (or other change) at a time per service and
environment. A reason goes last, in quotes: `/hello loadtest 20 30s both "size the new cache"`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat.views import notice
from bot.core import args as checks
from bot.core.config import Config
from bot.core.errors import UsageError
from bot.core.text import escape
from bot.release import actions
from bot.release.load import ANALYSIS_LABEL, LOAD_LABEL, SERVICE_LABEL
from commands import Command, Context, Reply

NAME = "loadtest"
USAGE = '/hello loadtest <rps> <duration> [stable|canary|both] ["<reason>"] | stop'
EXAMPLE = '/hello loadtest 20 30s both "size the new cache"'
TRACKS = {"stable": ("stable",), "canary": ("canary",), "both": ("stable", "canary")}
KEYWORDS = ("stop", *TRACKS)


@dataclass(frozen=True)
class Request:
    kind: str  # "run" | "stop"
    rps: int = 0
    seconds: int = 0
    tracks: tuple[str, ...] = ("stable",)
    reason: str = ""
    mutating: bool = True


def limits(config: Config) -> str:
    return (f"at most {config.loadtest_max_rps} req/s for at most {config.loadtest_max_seconds} s here "
            "(HELLO_LOADTEST_MAX_RPS and HELLO_LOADTEST_MAX_SECONDS, or the catalogue's `loadtest:`)")


def parse(args: Sequence[str], config: Config) -> Request:
    if not args:
        raise UsageError(f"give a rate and a duration, like `{EXAMPLE}`.", USAGE)
    if args[0].lower() == "stop":
        if len(args) > 1:
            raise UsageError("`/hello loadtest stop` takes nothing more.", USAGE)
        return Request(kind="stop", mutating=True)
    if len(args) < 2:
        raise UsageError(f"give a rate and a duration, like `{EXAMPLE}`.", USAGE)
    rps = checks.whole_number(args[0], low=1, high=1_000_000, what="rate in requests per second", usage=USAGE)
    span = checks.duration(args[1], USAGE)
    seconds = int(span.total_seconds())
    if rps > config.loadtest_max_rps or seconds > config.loadtest_max_seconds:
        raise UsageError(f"{rps} req/s for {seconds} s is beyond the limits: {limits(config)}.", USAGE)
    rest = list(args[2:])
    tracks = ("stable",)
    if rest and rest[0].lower() in TRACKS:
        tracks = TRACKS[rest.pop(0).lower()]
    reason = checks.reason(rest, config, USAGE, example=EXAMPLE, keywords=KEYWORDS)
    return Request(kind="run", rps=rps, seconds=seconds, tracks=tracks, reason=reason)


async def run(request: Request, ctx: Context) -> Reply | None:
    config = ctx.config
    if request.kind == "stop":
        return await stop(ctx)
    await ctx.propose(lambda cluster: actions.plan_loadtest(cluster, config, request.rps, request.seconds,
                                                            request.tracks, reason=request.reason))
    return None


async def stop(ctx: Context) -> Reply:
    """Delete the service's load Jobs: the load test's step sees them gone and ends as stopped."""
    config, cluster = ctx.config, await ctx.cluster()
    jobs = await cluster.jobs.list(f"{LOAD_LABEL},{SERVICE_LABEL}={config.stable_deployment},!{ANALYSIS_LABEL}")
    if not jobs:
        text = f"No load test is running for `{escape(config.stable_deployment)}`: nothing was stopped."
        return Reply(text=text, blocks=notice.blocks(text), ephemeral=True)
    for job in jobs:
        await cluster.jobs.delete(job["metadata"]["name"])
    releases = sorted({(job["metadata"].get("labels") or {}).get(LOAD_LABEL, "") for job in jobs})
    text = (f":octagonal_sign: <@{ctx.invocation.user_id}> stopped the load on `{escape(config.stable_deployment)}` "
            f"(request {', '.join(f'`{escape(r)}`' for r in releases)}): its {len(jobs)} Job(s) are deleted.")
    return Reply(text=text, blocks=notice.blocks(text))


COMMAND = Command(name=NAME, usage=USAGE, doc=__doc__, parse=parse, run=run, targeted=True)
