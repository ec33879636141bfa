"""`python -m sandbox.kube --port N [--seed manifests/] [--crds DIR] [--kubeconfig PATH] [--rbac FILE]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import tempfile
from pathlib import Path

from .emulator import KubeEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.kube", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", action="append", default=[], help="manifest folder or file (repeatable)")
    parser.add_argument("--crds", action="append", default=[],
                        help="CustomResourceDefinition YAML file or folder to store first (repeatable)")
    parser.add_argument("--kubeconfig", help="where to write a kubeconfig (default: a temporary file)")
    parser.add_argument("--token", help="bearer token written into the kubeconfig (default: the admin token)")
    parser.add_argument("--rbac", action="append", default=[], help="Role/ClusterRole YAML bound to the bot token")
    parser.add_argument("--rbac-token", default="bot-token")
    parser.add_argument("--admin-token", default="admin-token")
    parser.add_argument("--broken-image", action="append", default=[], help="image whose pods never get ready")
    parser.add_argument("--tick", type=float, default=0.1)
    parser.add_argument("--pod-ready-seconds", type=float, default=0.5)
    parser.add_argument("--deadline-scale", type=float, default=1.0)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    emu = KubeEmulator(rbac_files=args.rbac, rbac_token=args.rbac_token, admin_token=args.admin_token,
                       broken_images=args.broken_image, tick=args.tick, pod_ready_seconds=args.pod_ready_seconds,
                       deadline_scale=args.deadline_scale)
    for path in args.crds:
        emu.load_crds(path)
    for path in args.seed:
        emu.seed(path)
    await emu.start(args.host, args.port)
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else Path(tempfile.mkdtemp()) / "kubeconfig"
    emu.write_kubeconfig(kubeconfig, token=args.token)
    print(f"Kubernetes API emulator listening on {emu.url}", flush=True)
    print(f"kubeconfig: {kubeconfig}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emu.stop()
        print("stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
