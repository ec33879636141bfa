"""Following a Deployment rollout with a watch, and editing a Slack message as it goes.

:func:`status_of` reads a Deployment the way ``kubectl rollout status`` does: the controller must
have observed the latest generation, every desired replica must be updated, no old replica may be
left, and every updated replica must be available. ``Progressing=False`` with reason
``ProgressDeadlineExceeded`` means the rollout is stuck.

:func:`follow` watches the Deployment (no polling) until it is rolled out, stuck, stalled (no
change in its counts for ``stall`` seconds) or out of time, calling ``on_change`` with each new
status. :class:`MessageEditor` throttles the message edits that report it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.chat.messenger import Messenger, SlackError
from bot.chat.supervise import BACKGROUND
from bot.cluster.deployments import RolloutStatus, status_of
from bot.cluster.kube import Cluster
from bot.core.errors import ClusterError, NotFound
from bot.core.text import foreign

log = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
__all__ = ["MessageEditor", "RolloutResult", "RolloutStatus", "follow", "pod_warnings", "status_of"]


@dataclass
class RolloutResult:
    ok: bool
    status: RolloutStatus
    reason: str = ""  # why it failed: the Deployment's condition, a stall or a timeout
    warnings: list[str] = field(default_factory=list)  # recent Warning events of its new pods
    # ``reason`` and ``warnings`` are mrkdwn: what the cluster wrote is escaped (bot.text.foreign) here.


OnChange = Callable[[RolloutStatus], Awaitable[None]]


async def follow(cluster: Cluster, name: str, *, on_change: OnChange, timeout: float, stall: float,
                 container: str = "", clock: Callable[[], float] = time.monotonic) -> RolloutResult:
    """Watch Deployment ``name`` until it is rolled out (ok), stuck, stalled or ``timeout`` passes."""
    started = clock()
    deadline = started + timeout
    deploy = await cluster.deployments.get(name)
    current = status_of(deploy, container)
    await on_change(current)
    last_change = clock()
    while True:
        if current.done:
            return RolloutResult(True, current)
        if current.stuck:
            why = f"{foreign(current.stuck_reason, 80)}: {foreign(current.stuck_message)}".strip(": ")
            return await _failed(cluster, current, why)
        now = clock()
        if now >= deadline:
            return await _failed(cluster, current, f"not rolled out after {int(timeout)}s")
        if now - last_change >= stall:
            return await _failed(cluster, current, f"no progress for {int(stall)}s")
        window = max(1.0, min(deadline - now, stall - (now - last_change)))
        try:
            async for obj in cluster.deployments.watch(name, timeout=window,
                                                       resource_version=current.resource_version or None):
                seen = status_of(obj, container)
                if seen.signature != current.signature or seen.stuck != current.stuck:
                    last_change = clock()
                    current = seen
                    await on_change(current)
                else:
                    current = seen
                if current.done or current.stuck or clock() - last_change >= stall or clock() >= deadline:
                    break
        except NotFound:
            raise
        except ClusterError as exc:
            # 410 Gone (history compacted), a dropped stream or a 5xx: read afresh and watch again.
            log.info("watch on deployments/%s ended (%s); reading it again", name, exc)
            await asyncio.sleep(0.1)
            deploy = await cluster.deployments.get(name)
            seen = status_of(deploy, container)
            if seen.signature != current.signature:
                last_change = clock()
                await on_change(seen)
            current = seen


async def _failed(cluster: Cluster, status: RolloutStatus, reason: str) -> RolloutResult:
    return RolloutResult(False, status, reason, await pod_warnings(cluster, status.name))


async def pod_warnings(cluster: Cluster, deployment: str, limit: int = 3) -> list[str]:
    """Recent Warning events (e.g. ``BackOff``) of the pods of the Deployment's newest ReplicaSet."""
    try:
        deploy = await cluster.deployments.get(deployment)
        labels = ((deploy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        uid = (deploy.get("metadata") or {}).get("uid")
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        owned = [rs for rs in await cluster.replicasets.list(selector)
                 if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])]
        if not owned:
            return []
        newest = max(owned, key=lambda rs: int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0))
        prefix = f"Pod/{newest['metadata']['name']}-"
        events = await cluster.events.warnings(limit=50)
    except ClusterError as exc:
        log.warning("cannot read the warnings of %s: %s", deployment, exc)
        return []
    out: list[str] = []
    for event in events:
        if event.object.startswith(prefix):
            line = f"{foreign(event.reason, 80)}: {foreign(event.message)}"
            if line not in out:
                out.append(line)
        if len(out) >= limit:
            break
    return out


class MessageEditor:
    """Edits one Slack message through a queue of one: the latest state given, sent by the editor's own
    task, at most one edit per ``interval`` seconds.

    :meth:`show` and :meth:`final` never wait on Slack: a step goes on while an edit waits out a rate
    limit or a slow answer, and states given meanwhile are coalesced (only the latest is sent). A lost
    edit is logged, never raised; the messenger keeps its state for the sweeper to send again
    (:meth:`bot.chat.messenger.Messenger.resend`). :meth:`sent` waits until the queue is empty.
    """

    def __init__(self, messenger: Messenger, channel: str, ts: str, *, interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.messenger = messenger
        self.channel = channel
        self.ts = ts
        self.interval = interval
        self.clock = clock
        self.edits = 0
        self.final_taken = False  # Slack took the state given to :meth:`final`
        self._final: tuple[str, list[dict]] | None = None
        self._last = -1e9
        self._pending: tuple[str, list[dict]] | None = None
        self._sender: asyncio.Task | None = None

    async def show(self, text: str, blocks: list[dict]) -> None:
        """Make this the message's next state (replacing one not sent yet); returns at once."""
        self._queue((text, blocks))

    def _queue(self, state: tuple[str, list[dict]]) -> None:
        self._pending = state
        if self._sender is None or self._sender.done():
            self._sender = BACKGROUND.spawn(self._send(), f"progress {self.ts}", kind="progress")

    async def final(self, text: str, blocks: list[dict]) -> None:
        """The message's last state: queued as any other, so it is sent after the edit on its way."""
        self._final = (text, blocks)
        self._queue(self._final)

    def abandon(self) -> None:
        """Send nothing more: another replica edits the message now. The state not sent yet is dropped, an edit
        waiting for its turn (a rate limit, the interval) is cancelled, and the messenger forgets a state Slack
        did not take, so no older state of ours lands after theirs."""
        self._pending = self._final = None
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
        self.messenger.forget(self.channel, self.ts)

    async def sent(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, until every state given was sent (or given up); whether it was."""
        sender = self._sender
        if sender is None or sender.done():
            return True
        done, _ = await asyncio.wait({sender}, timeout=timeout)
        return bool(done) and (self._sender is None or self._sender.done())

    async def _send(self) -> None:
        while self._pending is not None:
            wait = self._last + self.interval - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            state = self._pending
            text, blocks = state
            self._pending = None
            self._last = self.clock()
            try:
                await self.messenger.update(self.channel, self.ts, text, blocks)
                self.edits += 1
                self.final_taken = state is self._final
            except SlackError as exc:
                log.warning("cannot edit the progress message %s in %s: %s", self.ts, self.channel, exc)
