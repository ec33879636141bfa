"""``python -m bot serve | check | rbac | sandbox``.

Each sub-command imports what it needs inside its function: the web server and Slack's Bolt for ``serve``,
the Kubernetes client for ``check``, the emulators for ``sandbox``. Importing them all would cost every
sub-command seconds (``rbac`` and a configuration error answer at once), so these are the deferred imports
this module is allowed (tests/core/test_shape.py lists the others).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from bot.core import catalogue_file, times
from bot.core import config as config_module
from bot.core.config import Config, ConfigError

if TYPE_CHECKING:
    from bot.core.catalogue import Catalogue


class JsonFormatter(logging.Formatter):
    """One JSON object per log line (what log collectors in a cluster expect)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "audit", None)
        if extra:
            data["audit"] = extra
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("sanic.access", "kubernetes", "urllib3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def load_or_exit(require_slack: bool = True) -> Config:
    try:
        config = config_module.load(require_slack=require_slack)
        catalogue_file.load(config)  # a malformed catalogue stops start-up too
        return config
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(args: argparse.Namespace) -> int:
    config = load_or_exit()
    if args.socket_mode and not config.slack_app_token:
        print("configuration error: --socket-mode needs SLACK_APP_TOKEN (an xapp- app-level token)",
              file=sys.stderr)
        return 2
    setup_logging(config.log_level)

    from bot.chat.app import build_app
    from bot.chat.server import build_server
    from bot.wiring import build_services
    services = build_services(config)
    bolt = build_app(services, socket_mode=args.socket_mode)
    ready = {"ok": False}
    app = build_server(bolt, ready=ready, touchup=True)
    port = args.port if args.port is not None else config.port

    if args.socket_mode:
        refused = socket_mode_refused(config)
        if refused:
            print(f"configuration error: SLACK_APP_TOKEN refused by Slack ({refused})", file=sys.stderr)
            return 2

    _hooks(app, services, bolt, args, ready, port)
    app.run(host=args.host, port=port, single_process=True, access_log=False, motd=False)
    return 0


def _hooks(app: Any, services: Any, bolt: Any, args: argparse.Namespace, ready: dict, port: int) -> None:
    """Start the bot's loops once the server listens; stop them, and give the Lease up, before it stops."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.chat.supervise import BACKGROUND
    from bot.wiring import warm_up

    config = services.config

    @app.after_server_start
    async def started(app: Any) -> None:
        await services.approvals.start()
        await services.releases.start()  # resumes, on the leader, every release left unfinished
        await services.schedules.start()
        if args.socket_mode:
            app.ctx.socket = AsyncSocketModeHandler(bolt, config.slack_app_token)
            # connect in the background: slack_sdk retries by itself while Slack is unreachable
            app.ctx.socket_task = BACKGROUND.spawn(app.ctx.socket.connect_async(), "socket_mode connect")
        ready["ok"] = True
        logging.getLogger("bot").info("serving on port %s (%s)", port,
                                      "Socket Mode" if args.socket_mode else "HTTP /slack/events")

        async def warm() -> None:
            logging.getLogger("bot").info("warm-up: %s", await warm_up(services))
            # what start-up loaded lives as long as the process: keep the collector from rescanning it
            gc.freeze()

        app.ctx.warm_task = BACKGROUND.spawn(warm(), "warm-up")

    @app.before_server_stop
    async def stopping(app: Any) -> None:
        ready["ok"] = False
        if args.socket_mode and getattr(app.ctx, "socket", None):
            app.ctx.socket_task.cancel()
            await app.ctx.socket.close_async()
        await bolt.dispatcher.drain(timeout=20)  # type: ignore[attr-defined]
        await services.alerts.drain(timeout=10)  # cards being posted; another replica edits them later
        await services.home.supervisor.drain(timeout=5)
        await BACKGROUND.drain(timeout=5)
        await services.releases.stop()  # a release in flight is continued by the next leader
        await services.schedules.stop()  # releases the Lease, so another replica leads at once
        await services.leader.release(times.now())
        await services.approvals.stop()
        await services.close()


def socket_mode_refused(config: Config) -> str:
    """Slack's error code when it refuses the app-level token; "" when accepted or Slack is unreachable."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(base_url=config.slack_api_url, timeout=10)
    try:
        client.apps_connections_open(app_token=config.slack_app_token)
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown_error"))
        return error if error in ("invalid_auth", "not_authed", "not_allowed_token_type", "account_inactive",
                                  "token_revoked", "token_expired") else ""
    except OSError:
        return ""  # unreachable: the socket client keeps retrying once started
    return ""


async def check_service(config: Config) -> tuple[bool, str]:
    """One service in one environment (``config`` from ``Service.config_for``): can the bot read its
    Deployments, routes (its traffic router's: Mappings or an HTTPRoute's rule, refused when not as expected) and
    Certificate, may it do everything it does to them (:func:`access.for_service`),
    and is its Prometheus answering."""
    from bot.cluster import access
    from bot.cluster.kube import Cluster
    from bot.observe.prom import Prometheus

    async def kubernetes() -> str:
        cluster = await Cluster.connect(config)
        needed = access.for_service(config)
        try:
            found = await asyncio.gather(
                cluster.deployments.get(config.stable_deployment), cluster.deployments.get(config.canary_deployment),
                cluster.traffic.stable_route(), cluster.traffic.canary_route(),
                cluster.certificates.get(config.certificate), access.missing(cluster, needed),
                cluster.check_watches(), return_exceptions=True)
            *reads, lacking, watches = found
            failures = [str(exc) for exc in (*reads, lacking, watches) if isinstance(exc, Exception)]
            if isinstance(lacking, list) and lacking:
                failures.append(access.refusal(lacking, config.namespace))
            if isinstance(watches, tuple) and not watches[0]:
                failures.append(watches[1])
            if failures:
                raise RuntimeError(", ".join(dict.fromkeys(failures)))
            return (f"{cluster.host}, namespace {config.namespace}: deployments {config.stable_deployment}, "
                    f"{config.canary_deployment}, {_routes(config)}, "
                    f"certificate {config.certificate}; allowed all {len(needed)} verbs; {watches[1]}")
        finally:
            await cluster.close()

    prom = Prometheus(config.prometheus_url, timeout=config.prometheus_timeout_seconds, names=config.metrics)
    kube_result, prom_result = await asyncio.gather(kubernetes(), prom.check(), return_exceptions=True)
    ok = not isinstance(kube_result, BaseException) and not isinstance(prom_result, BaseException)
    kube_text = f"kubernetes {'failed: ' if isinstance(kube_result, BaseException) else 'ok, '}{kube_result}"
    prom_text = f"prometheus {'failed: ' if isinstance(prom_result, BaseException) else ''}{prom_result}"
    return ok, f"{kube_text}; {prom_text}"


def _routes(config: Config) -> str:
    """The routes ``check`` read, as it reports them."""
    if config.traffic.router == "gateway-api":
        t = config.traffic
        return f"httproute {t.route} rule {t.rule} (backends {t.stable_service}, {t.canary_service})"
    return f"mappings {config.stable_mapping}, {config.canary_mapping}"


async def check_state(config: Config) -> tuple[bool, str]:
    """May the bot keep its state (:data:`access.STATE`: ConfigMaps, the Lease) in ``HELLO_NAMESPACE``."""
    from bot.cluster import access
    from bot.cluster.kube import Cluster

    try:
        cluster = await Cluster.connect(config)
        try:
            lacking = await access.missing(cluster, access.STATE)
        finally:
            await cluster.close()
    except Exception as exc:
        return False, f"kubernetes failed: {exc}"
    if lacking:
        return False, f"kubernetes failed: {access.refusal(lacking, config.namespace)}"
    return True, (f"kubernetes ok, {cluster.host}, namespace {config.namespace}: allowed all {len(access.STATE)} "
                  "verbs on configmaps and leases")


async def run_checks(config: Config, catalogue: Catalogue | None = None) -> list[tuple[str, bool, str]]:
    """Each dependency: (name, ok, detail). With a catalogue file, one entry per service and environment
    (``service/environment``) and one for the bot's state in ``HELLO_NAMESPACE`` instead of the single
    service's kubernetes and prometheus entries."""
    from bot.chat.messenger import Messenger, make_client
    from bot.cluster import access
    from bot.cluster.kube import Cluster
    from bot.observe.prom import Prometheus

    results: list[tuple[str, bool, str]] = [("configuration", True, "ok")]
    messenger = Messenger(make_client(config))
    try:
        who = await messenger.auth_test()
        results.append(("slack", True, f"ok, {who.get('user', '?')} in {who.get('team', '?')} "
                                       f"({config.slack_api_url})"))
    except Exception as exc:
        results.append(("slack", False, str(exc)))
    if catalogue is not None and catalogue.source:
        pairs = list(catalogue.pairs())
        found = await asyncio.gather(*(check_service(service.config_for(env, config)) for service, env in pairs))
        for (service, env), (ok, detail) in zip(pairs, found, strict=True):
            results.append((f"{service.name}/{env.name}", ok, detail))
        results.append(("state", *await check_state(config)))
        return results
    try:
        cluster = await Cluster.connect(config)
        try:
            line = await cluster.check()
            needed = access.for_single(config)
            lacking, (watching, watches) = await asyncio.gather(access.missing(cluster, needed),
                                                                cluster.check_watches())
            failures = [access.refusal(lacking, config.namespace)] if lacking else []
            failures += [] if watching else [watches]
            if failures:
                raise RuntimeError("; ".join(failures))
            results.append(("kubernetes", True, f"{line}; allowed all {len(needed)} verbs; {watches}"))
        finally:
            await cluster.close()
    except Exception as exc:
        results.append(("kubernetes", False, str(exc)))
    try:
        prom = Prometheus(config.prometheus_url, timeout=config.prometheus_timeout_seconds, names=config.metrics)
        results.append(("prometheus", True, await prom.check()))
    except Exception as exc:
        results.append(("prometheus", False, str(exc)))
    return results


def check(args: argparse.Namespace) -> int:
    try:
        config = config_module.load()
        catalogue = catalogue_file.load(config)
    except ConfigError as exc:
        print(f"configuration  failed  {exc}")
        return 1
    results = asyncio.run(run_checks(config, catalogue))
    width = max(14, *(len(name) + 1 for name, _, _ in results))
    for name, ok, detail in results:
        print(f"{name:<{width}} {'ok' if ok else 'failed':<7} {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


def rbac(args: argparse.Namespace) -> int:
    """Print the bot's Role and RoleBinding for every namespace of the catalogue (:mod:`bot.cluster.roles`)."""
    from bot.cluster import roles

    try:
        config = config_module.load(require_slack=False)
        text = roles.render(catalogue_file.load(config), config, context=args.context)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def sandbox(args: argparse.Namespace) -> int:
    from sandbox.run import main as sandbox_main

    return sandbox_main(port=args.port if args.port is not None else 3000, host=args.host)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="hello-chatops: release helloworld from Slack")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_serve = sub.add_parser("serve", help="run the bot's HTTP server (Slack events, health, metrics)")
    p_serve.add_argument("--port", type=int, default=None, help="port (default: $PORT or 3000)")
    p_serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p_serve.add_argument("--socket-mode", action="store_true", help="receive events over Socket Mode "
                         "(needs SLACK_APP_TOKEN); the HTTP server still serves health and metrics")
    p_serve.set_defaults(func=serve)
    p_check = sub.add_parser("check", help="validate configuration and reach Slack, Kubernetes (with every "
                             "permission the bot uses), Prometheus")
    p_check.set_defaults(func=check)
    p_rbac = sub.add_parser("rbac", help="print the bot's Role and RoleBinding for every namespace it manages")
    p_rbac.add_argument("--context", default=None, help="only this cluster: a kubeconfig context of the "
                        "catalogue, or in-cluster for the bot's own (default: every cluster)")
    p_rbac.set_defaults(func=rbac)
    p_sandbox = sub.add_parser("sandbox", help="run everything locally with emulated Slack and Kubernetes")
    p_sandbox.add_argument("--port", type=int, default=None, help="console port (default 3000)")
    p_sandbox.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    p_sandbox.set_defaults(func=sandbox)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
