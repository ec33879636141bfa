"""Time from a signed ``/hello status`` to its answer, for a channel of every service (one line per service and
environment) against one service's full status, as the catalogue grows.

Two emulated clusters (staging, production) reached through two kubeconfig contexts, each seeded with
``--services`` copies of helloworld (``svc-1`` … in namespaces of their own), the real bot with a catalogue of
them all, the Slack emulator. No Prometheus (its absence is answered at once), so the figures are the bot's
and the clusters' share. Prints each size's median over ``--runs`` and the ratio to the single service's status:
the pairs are read concurrently, so the overview should cost far less than one status per pair. The
emulators run in the bot's event loop; their controllers are stopped once every Deployment has rolled out and
every Certificate is issued (their ticks read every object, which would block the loop and be in the figures):
on this machine it is all one process's CPU, so the figures are an upper bound.

With the watch caches on, the overview is also timed just after every service's stable Deployment changed in
both clusters (an annotation, applied behind the bot's back, once each cache has seen it): every pair's snapshot
is built anew, where the other figures reuse the snapshots of objects that did not change.

Then the time from opening the app's Home (an ``app_home_opened`` event) to its view published with a Services
part of every service and environment, and the API requests other than watches each Home asked.

As serving does, the bot first starts its watch caches (:func:`bot.wiring.follow`: every namespace's, and its
own records') and the figures are taken once each has listed; ``--no-watch`` leaves them off (every status
reads the API server, as before the caches). Also printed: the API requests other than watches the clusters
answered per one-service status and during ``--idle`` seconds with no command, and the process's resident
memory (RSS: the bot and both emulators, which hold every object too) with the bot's share (RSS after the bot
started and synced, less RSS with the emulators seeded alone), and the **served RSS**: the real bot, ``python -m
bot serve``, alone in its own process against the same clusters, once it has opened every watch (``--no-serve``
skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.cluster.cache import AUDIT, DEPLOYMENTS
from bot.wiring import follow
from sandbox.kube import KubeEmulator
from sandbox.slack import SlackEmulator
from sandbox.slack.state import Message
from sandbox.stack import MANIFESTS, ROOT, Stack, write_kubeconfig


def seed(tmp: Path, count: int) -> Path:
    """helloworld's manifests again as svc-1 … svc-<count>, each in its own namespace."""
    out = tmp / "services"
    out.mkdir()
    sources = [p for p in sorted((MANIFESTS / "helloworld").glob("*.yaml")) if p.name != "kustomization.yaml"]
    sources.append(MANIFESTS / "cert-manager" / "certificate.yaml")
    for index in range(1, count + 1):
        name = f"svc-{index}"
        for source in sources:
            text = source.read_text().replace("helloworld", name).replace("namespace: hello\n", f"namespace: {name}\n")
            (out / f"{name}-{source.name}").write_text(text.replace("name: hello\n", f"name: {name}\n"))
    return out


def catalogue(count: int) -> str:
    lines = ["services:"]
    for index in range(1, count + 1):
        name = f"svc-{index}"
        lines += [f"  - name: {name}", "    environments:",
                  f"      - {{name: staging, context: staging, namespace: {name}}}",
                  f"      - {{name: production, context: production, namespace: {name}}}"]
    return "\n".join(lines) + "\n"


async def answer_seconds(stack: Stack, text: str, starts: str) -> float:
    before = {m.ts for m in stack.slack.messages("C1")}
    t0 = time.perf_counter()
    await stack.command("U1", text, channel="C1")
    await stack.slack.wait_for(lambda m: isinstance(m, Message) and m.channel == "C1" and m.ts not in before
                               and m.text.startswith(starts), 30)
    return time.perf_counter() - t0


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory now, in MB (Linux; this one's by default)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def settled(emulator: KubeEmulator, timeout: float = 600) -> None:
    """Wait until every seeded Deployment is rolled out and every Certificate issued, then stop the controllers."""
    def done() -> bool:
        for deploy in emulator.store.list("apps", "deployments"):
            status = deploy.get("status") or {}
            if (status.get("updatedReplicas") or 0) < (deploy["spec"].get("replicas") or 0):
                return False
        return all(any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in (cert.get("status") or {}).get("conditions") or [])
                   for cert in emulator.store.list("cert-manager.io", "certificates"))

    deadline = asyncio.get_running_loop().time() + timeout
    while not done():
        assert asyncio.get_running_loop().time() < deadline, "the seeded services never rolled out"
        await asyncio.sleep(0.5)
    await emulator.stop_controllers()


def watching(clusters: dict[str, KubeEmulator]) -> int:
    """Watch streams open on both clusters now."""
    return sum(len(e._watches) for e in clusters.values())


async def served_rss(tmp: Path, clusters: dict[str, KubeEmulator], env: dict[str, str], watches: int,
                     timeout: float = 300) -> float:
    """The resident memory (MB) of the real bot in a process of its own (``python -m bot serve``, with its own
    Slack emulator), once it has opened as many watches as the bench's bot did and they have stayed open for
    a few seconds (its warm-up has listed them and loaded the chart library)."""
    async with SlackEmulator(signing_secret="bench-secret", bot_token="xoxb-bench") as slack:
        served = {**os.environ, **env, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench-secret",
                  "SLACK_API_URL": slack.api_url, "PYTHONPATH": str(ROOT), "HELLO_LOG_LEVEL": "WARNING"}
        log = (tmp / "serve.log").open("wb")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1",
                                                    "--port", "0", cwd=ROOT, env=served, stdout=log, stderr=log)
        try:
            loop = asyncio.get_running_loop()
            deadline, steady = loop.time() + timeout, 0
            while steady < 10:  # 5 s with every watch open
                assert proc.returncode is None, f"the bot stopped: {(tmp / 'serve.log').read_text()[-2000:]}"
                assert loop.time() < deadline, f"the served bot opened {watching(clusters)} of {watches} watches"
                steady = steady + 1 if watching(clusters) >= watches else 0
                await asyncio.sleep(0.5)
            return rss_mb(proc.pid)
        finally:
            proc.terminate()
            await proc.wait()
            log.close()


def reads(clusters: dict[str, KubeEmulator]) -> int:
    """API requests answered by both clusters, watches aside."""
    return sum(e.request_count() - e.request_count("watch") for e in clusters.values())


async def synced(stack: Stack, timeout: float = 600) -> None:
    """Wait until every target's watch caches (its audit Events' too) and the records' have listed (so status and
    Home read them)."""
    clusters = [await target.cluster() for target in stack.services.targets.every()]
    records = stack.services.approvals.store
    deadline = asyncio.get_running_loop().time() + timeout
    while (any(cluster.from_cache(events=False) is None or cluster.caches.current(cluster.namespace, AUDIT.key) is None
               for cluster in clusters)
           or records.cache is None or not records.cache.synced.is_set()):
        assert asyncio.get_running_loop().time() < deadline, "the watch caches never listed"
        await asyncio.sleep(0.2)


async def all_changed(stack: Stack, clusters: dict[str, KubeEmulator], count: int, mark: str,
                      timeout: float = 120) -> None:
    """Annotate every service's stable Deployment in both clusters with ``mark`` and wait until every watch cache
    holds the change."""
    for emulator in clusters.values():
        for index in range(1, count + 1):
            name = f"svc-{index}"
            deploy = emulator.get("apps", "v1", "deployments", name, name)
            deploy["metadata"].setdefault("annotations", {})["bench/mark"] = mark
            emulator.apply(deploy)
    caches = []
    for target in stack.services.targets.every():
        cluster = await target.cluster()
        caches.append((cluster.caches.current(cluster.namespace, DEPLOYMENTS.key), target.config.stable_deployment))

    def seen() -> bool:
        return all(informer is not None and ((informer.get(name) or {}).get("metadata", {}).get("annotations")
                                             or {}).get("bench/mark") == mark for informer, name in caches)

    deadline = asyncio.get_running_loop().time() + timeout
    while not seen():
        assert asyncio.get_running_loop().time() < deadline, "the watch caches never saw the change"
        await asyncio.sleep(0.05)


async def home_seconds(stack: Stack, user: str = "U1") -> float:
    """Time from the user opening Home to its view published anew (with the Services part)."""
    before = stack.slack.home(user)
    old = before.hash if before is not None else None
    t0 = time.perf_counter()
    await stack.slack.open_home(user)
    deadline = t0 + 60
    while (home := stack.slack.home(user)) is None or home.hash == old:
        assert time.perf_counter() < deadline, "Home was never published"
        await asyncio.sleep(0.002)
    assert "Services" in str(home.to_api(stack.slack.workspace)), "Home has no Services part"
    return time.perf_counter() - t0


@dataclass
class Figures:
    overview: float
    changed: float | None  # the overview just after every service changed (watch caches on)
    single: float
    reads_per_status: float
    home: float
    reads_per_home: float
    idle_reads: int
    idle_seconds: float
    watches: int
    rss: float
    bot_rss: float
    served_rss: float | None  # the real bot alone in its own process


async def measure(count: int, runs: int, *, watch: bool, idle: float, serve: bool) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-overview-") as folder:
        tmp = Path(folder)
        clusters = {name: KubeEmulator(tick=0.5, pod_ready_seconds=0.1, cert_issue_delay=0.1)
                    for name in ("staging", "production")}
        manifests = seed(tmp, count)
        try:
            for emulator in clusters.values():
                await emulator.start()
                emulator.seed(manifests)
            await asyncio.gather(*(settled(emulator) for emulator in clusters.values()))
            gc.collect()
            base = rss_mb()
            (tmp / "services.yaml").write_text(catalogue(count))
            config = write_kubeconfig(tmp / "kubeconfig", clusters)
            env = {"KUBECONFIG": str(config), "HELLO_KUBE_CONTEXT": "production",
                   "HELLO_NAMESPACE": "svc-1", "HELLO_SERVICES": str(tmp / "services.yaml"),
                   "HELLO_DEPLOYERS": "U1", "HELLO_APPROVERS": "U2", "PROMETHEUS_TIMEOUT": "1"}
            async with Stack(kube=clusters["production"], env=env, seed=None, engine=False) as stack:
                if watch:
                    await follow(stack.services)  # as serving's warm-up does
                    await synced(stack)
                await answer_seconds(stack, "/hello status", "Services")  # connections and models warm
                await answer_seconds(stack, "/hello status svc-1 staging", "svc-1 status")
                overview, single, per_status = [], [], []
                for _ in range(runs):
                    overview.append(await answer_seconds(stack, "/hello status", "Services"))
                    before = reads(clusters)
                    single.append(await answer_seconds(stack, "/hello status svc-1 staging", "svc-1 status"))
                    per_status.append(reads(clusters) - before)
                changed = []
                for run in range(runs if watch else 0):
                    await all_changed(stack, clusters, count, str(run))
                    changed.append(await answer_seconds(stack, "/hello status", "Services"))
                await home_seconds(stack)  # warm
                home, per_home = [], []
                for _ in range(runs):
                    before = reads(clusters)
                    home.append(await home_seconds(stack))
                    per_home.append(reads(clusters) - before)
                await stack.settle()
                before = reads(clusters)
                await asyncio.sleep(idle)
                idle_reads = reads(clusters) - before
                gc.collect()
                rss = rss_mb()
                watches = watching(clusters)
            served = await served_rss(tmp, clusters, env, watches) if serve else None
            return Figures(statistics.median(overview), statistics.median(changed) if changed else None,
                           statistics.median(single), statistics.median(per_status),
                           statistics.median(home), statistics.median(per_home), idle_reads, idle, watches, rss,
                           rss - base, served)
        finally:
            for emulator in clusters.values():
                await emulator.stop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, nargs="+", default=[2, 8, 24])  # two at least: one is always meant
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds with no command, counting API requests")
    parser.add_argument("--no-watch", action="store_true", help="no watch caches: every status reads the API server")
    parser.add_argument("--no-serve", action="store_true", help="skip the served bot's own memory")
    args = parser.parse_args()
    print(f"watch caches: {'off' if args.no_watch else 'on'}")
    print(f"{'services':>8} {'pairs':>5} {'overview':>11} {'all changed':>11} {'one status':>11} {'overview/one':>12} "
          f"{'reads/status':>12} {'Home':>11} {'reads/Home':>10} {'idle reads':>14} {'watches':>7} {'RSS':>8} "
          f"{'bot RSS':>8} {'served RSS':>10}")
    for count in args.services:
        f = await measure(count, args.runs, watch=not args.no_watch, idle=args.idle,
                          serve=not args.no_serve and not args.no_watch)
        changed = f"{f.changed * 1000:>8.1f} ms" if f.changed is not None else f"{'-':>11}"
        print(f"{count:>8} {2 * count:>5} {f.overview * 1000:>8.1f} ms {changed} {f.single * 1000:>8.1f} ms "
              f"{f.overview / f.single:>12.2f} {f.reads_per_status:>12.0f} {f.home * 1000:>8.1f} ms "
              f"{f.reads_per_home:>10.0f} "
              f"{f.idle_reads:>6} in {f.idle_seconds:.0f} s "
              f"{f.watches:>7} {f.rss:>5.0f} MB {f.bot_rss:>5.0f} MB "
              + (f"{f.served_rss:>7.0f} MB" if f.served_rss is not None else f"{'-':>10}"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
