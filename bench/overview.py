"""Time from a signed ``/hello status`` to its answer, for a channel of every service (one line per service and
environment) against one service's full status, as the catalogue grows.

Two emulated clusters (staging, production) reached through two kubeconfig contexts, each seeded with
``--services`` copies of helloworld (``svc-1`` … in namespaces of their own), the real bot with a catalogue of
them all, the Slack emulator. No Prometheus (its absence is answered at once), so the figures are the bot's
and the clusters' share. Prints each size's median over ``--runs`` and the ratio to the single service's status:
the pairs are read concurrently, so the overview should cost far less than one status per pair. The
emulators run in the bot's event loop (and tick once a second here, so their controllers stay out of the
figures): on this machine it is all one process's CPU, so the figures are an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.kube import KubeEmulator
from sandbox.slack.state import Message
from sandbox.stack import MANIFESTS, Stack
from tests.harness.several import kubeconfig


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


async def measure(count: int, runs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-overview-") as folder:
        tmp = Path(folder)
        clusters = {name: KubeEmulator(tick=1.0, pod_ready_seconds=0.1) for name in ("staging", "production")}
        manifests = seed(tmp, count)
        try:
            for emulator in clusters.values():
                await emulator.start()
                emulator.seed(manifests)
            (tmp / "services.yaml").write_text(catalogue(count))
            env = {"KUBECONFIG": str(kubeconfig(tmp, clusters)), "HELLO_KUBE_CONTEXT": "production",
                   "HELLO_NAMESPACE": "svc-1", "HELLO_SERVICES": str(tmp / "services.yaml"),
                   "HELLO_DEPLOYERS": "U1", "HELLO_APPROVERS": "U2", "PROMETHEUS_TIMEOUT": "1"}
            async with Stack(kube=clusters["production"], env=env, seed=None, engine=False) as stack:
                await answer_seconds(stack, "/hello status", "Services")  # connections and models warm
                await answer_seconds(stack, "/hello status svc-1 staging", "svc-1 status")
                overview, single = [], []
                for _ in range(runs):
                    overview.append(await answer_seconds(stack, "/hello status", "Services"))
                    single.append(await answer_seconds(stack, "/hello status svc-1 staging", "svc-1 status"))
                return statistics.median(overview), statistics.median(single)
        finally:
            for emulator in clusters.values():
                await emulator.stop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, nargs="+", default=[2, 8, 24])  # two at least: one is always meant
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    print(f"{'services':>8} {'pairs':>5} {'overview (median)':>18} {'one status (median)':>20} "
          f"{'overview / one':>15} {'overview / (pairs x one)':>25}")
    for count in args.services:
        overview, single = await measure(count, args.runs)
        pairs = 2 * count
        print(f"{count:>8} {pairs:>5} {overview * 1000:>15.1f} ms {single * 1000:>17.1f} ms "
              f"{overview / single:>15.2f} {overview / (pairs * single):>25.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
