"""The service catalogue: HELLO_SERVICES' file, or the single-service variables as a catalogue of one."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core import catalogue_file
from bot.core.catalogue import Catalogue, Environment, LockMode, Overrides, Queries, Service
from bot.core.catalogue_file import load as load_catalogue
from bot.core.config import ConfigError, MetricNames, Traffic, load
from bot.core.errors import UsageError
from tests.catalogues import catalogue, service

ROOT = Path(__file__).resolve().parents[2]
BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "zz-signing-secret-zz"}

VALID = """
services:
  - name: helloworld
    environments:
      - {name: staging, context: staging, namespace: hello}
      - name: production
        context: production
        namespace: hello-prod
        prometheus_url: http://prometheus.prod:9090
        approvers: [S0PROD]
    image: {repository: registry.example.com/hello/helloworld, version_pattern: '^v\\d+$'}
    channels: [C0HELLO, C0SHARED]
    deployers: [U0DEP, S0TEAM]
    approvers: [S0APPROVE]
    analysis: {enabled: true, steps: [5, 50], gates: [50], interval: 30s, min_requests: 20,
               max_latency_ratio: 2, min_success: 99.5, max_inconclusive: 4, mode: advise,
               max_wait: 45m, confidence: 95}
    bake: {minutes: 30, auto_rollback: false}
    soak_minutes: 90
  - name: payments
    environments:
      - {name: staging, context: staging, namespace: payments}
      - {name: production, in_cluster: true, namespace: payments}
    deployments: {stable: payments-v, canary: payments-v-canary}
    mappings: {stable: pay, canary: pay-canary}
    container: app
    certificate: pay-tls
    metrics:
      preset: envoy
      queries:
        requests: sum by (envoy_cluster_name) (increase(rq_total[$window]))
        errors: sum by (envoy_cluster_name) (increase(rq_5xx[$window]))
        p50: histogram_quantile(0.5, sum by (le, envoy_cluster_name) (increase(rq_time_bucket[$window])))
        p99: histogram_quantile(0.99, sum by (le, envoy_cluster_name) (increase(rq_time_bucket[$window])))
    channels: [C0PAY, C0SHARED]
    lock: refuse
"""


def write(tmp_path: Path, text: str, name: str = "services.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def catalogue_from(tmp_path: Path, text: str) -> Catalogue:
    return load_catalogue(load({**BASE, "HELLO_SERVICES": str(write(tmp_path, text))}))


def edited(change: Any) -> str:
    """VALID with ``change(data)`` applied."""
    data = yaml.safe_load(VALID)
    change(data)
    return yaml.safe_dump(data)


# ------------------------------------------------------------------------------ a valid catalogue


def test_a_complete_catalogue_of_two_services_in_two_environments_loads(tmp_path: Path) -> None:
    catalogue = catalogue_from(tmp_path, VALID)
    assert catalogue.names == ("helloworld", "payments")
    assert catalogue.source == str(tmp_path / "services.yaml")
    hello, pay = catalogue.services
    assert hello.environments == (
        Environment(name="staging", namespace="hello", context="staging"),
        Environment(name="production", namespace="hello-prod", context="production",
                    prometheus_url="http://prometheus.prod:9090", approvers=("S0PROD",)),
    )
    # object names default from the service's name
    assert (hello.stable_deployment, hello.canary_deployment) == ("helloworld", "helloworld-canary")
    assert (hello.stable_mapping, hello.canary_mapping) == ("helloworld", "helloworld-canary")
    assert (hello.container, hello.certificate) == ("helloworld", "helloworld-tls")
    assert hello.image_repository == "registry.example.com/hello/helloworld"
    assert hello.version_pattern == r"^v\d+$"
    assert hello.channels == ("C0HELLO", "C0SHARED")
    assert (hello.deployers, hello.approvers) == (("U0DEP", "S0TEAM"), ("S0APPROVE",))
    assert hello.overrides == Overrides(
        canary_analysis=True, canary_steps=(5, 50), canary_gates=(50,), analysis_interval_seconds=30.0,
        analysis_min_requests=20, analysis_max_latency_ratio=2.0, analysis_min_success=99.5,
        analysis_max_inconclusive=4, analysis_mode="advise", analysis_max_wait_seconds=2700.0,
        analysis_confidence=95.0, bake_minutes=30.0, auto_rollback=False)
    assert (hello.soak_minutes, hello.lock, hello.metrics_preset, hello.queries) == (90.0, LockMode.QUEUE, None, None)

    assert pay.environments[1] == Environment(name="production", namespace="payments", in_cluster=True)
    assert (pay.stable_deployment, pay.canary_deployment) == ("payments-v", "payments-v-canary")
    assert (pay.stable_mapping, pay.canary_mapping, pay.container, pay.certificate) == (
        "pay", "pay-canary", "app", "pay-tls")
    assert pay.image_repository == "payments" and pay.lock is LockMode.REFUSE
    assert pay.metrics_preset == "envoy" and pay.overrides == Overrides() and pay.soak_minutes == 60.0
    assert isinstance(pay.queries, Queries)
    assert pay.queries.expressions(300)["requests"] == "sum by (envoy_cluster_name) (increase(rq_total[300s]))"
    assert list(catalogue.pairs()) == [(s, e) for s in catalogue.services for e in s.environments]


def test_the_example_in_manifests_is_a_valid_catalogue(tmp_path: Path) -> None:
    configmap = yaml.safe_load((ROOT / "manifests" / "several-services" / "services.yaml").read_text())
    assert configmap["kind"] == "ConfigMap"
    catalogue = catalogue_from(tmp_path, configmap["data"]["services.yaml"])
    assert catalogue.names == ("helloworld", "payments")
    assert all(len(service.environments) == 2 for service in catalogue.services)
    assert catalogue.services[1].queries is not None and catalogue.services[1].lock is LockMode.REFUSE


def test_the_operator_guide_shows_the_example_catalogue(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "operator-guide.md").read_text()
    section = guide[guide.index("## Several services and environments"):]
    block = re.search(r"```yaml\n(services:.*?)```", section, re.S)
    assert block, "the operator guide's catalogue example is missing"
    configmap = yaml.safe_load((ROOT / "manifests" / "several-services" / "services.yaml").read_text())
    shown = catalogue_file.parse(yaml.safe_load(block.group(1)))
    assert shown.services == catalogue_file.parse(yaml.safe_load(configmap["data"]["services.yaml"])).services


# ------------------------------------------------------------------------------ malformed catalogues


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["services"][1]["environments"][1].pop("namespace"),
         "service 'payments', environments[1].namespace: required"),
        (lambda d: d["services"][0]["environments"][0].update(namespace="Hello_NS"),
         "service 'helloworld', environments[0].namespace: 'Hello_NS' is not a DNS-1123 label"),
        (lambda d: d["services"][1].update(deployments={"stable": "pay..v"}),
         "service 'payments', deployments.stable: 'pay..v' is not a DNS-1123 name"),
        (lambda d: d["services"][0].update(channels=["U123"]),
         "service 'helloworld', channels[0]: 'U123' is not one of channel ids"),
        (lambda d: d["services"][0]["environments"][1].update(approvers=["dana"]),
         "service 'helloworld', environments[1].approvers[0]: 'dana' is not one of user ids"),
        (lambda d: d["services"][0].update(analysis={"steps": [50, 10]}),
         "service 'helloworld', analysis.steps must rise"),
        (lambda d: d["services"][0].update(bake={"minutes": "soon"}),
         "service 'helloworld', bake.minutes must be a number of minutes"),
        (lambda d: d["services"][0].update(lock="wait"),
         "service 'helloworld', lock: must be 'queue'"),
        (lambda d: d["services"][1]["metrics"].update(preset="statsd"),
         "service 'payments', metrics.preset: must be one of helloworld, envoy"),
        (lambda d: d["services"][1]["metrics"]["queries"].update(p99="histogram_quantile(0.99, x[5m])"),
         "service 'payments', metrics.queries.p99: must use $window"),
        (lambda d: d["services"][1]["metrics"]["queries"].pop("errors"),
         "service 'payments', metrics.queries.errors: required"),
        (lambda d: d["services"][1]["environments"][0].update(in_cluster=True),
         "service 'payments', environments[0]: give either context"),
        (lambda d: d["services"][1]["environments"][1].update(name="staging"),
         "service 'payments', environments[1].name: 'staging' is listed twice"),
        (lambda d: d["services"][1].update(name="helloworld"),
         "service 'helloworld', name: another service has the same name"),
        (lambda d: d["services"][1].pop("name"), "services[1].name: required"),
        (lambda d: d["services"][1].update(environments=[]), "service 'payments', environments: required"),
        (lambda d: d["services"][0].update(image={"repository": "has space"}),
         "service 'helloworld', image.repository: 'has space' is not an image repository"),
        (lambda d: d["services"][0].update(image={"version_pattern": "(("}),
         "service 'helloworld', image.version_pattern is not a valid regular expression"),
        (lambda d: d.update(services=[]), "services: required"),
        (lambda d: d["services"][0]["environments"][1].update(approvals=0),
         "service 'helloworld', environments[1].approvals: must be a whole number from 1 to 5"),
        (lambda d: d["services"][0]["environments"][1].update(approvals="two"),
         "service 'helloworld', environments[1].approvals: must be a whole number from 1 to 5"),
        (lambda d: d["services"][0].update(traffic={"router": "istio"}),
         "service 'helloworld', traffic.router: must be one of emissary, gateway-api"),
        (lambda d: d["services"][0].update(traffic={"router": "gateway-api"}),
         "service 'helloworld', traffic.route: required"),
        (lambda d: d["services"][0].update(traffic={"router": "gateway-api", "route": "web", "rule": -1}),
         "service 'helloworld', traffic.rule: must be the rule's index in spec.rules (0, 1, ...) or its name"),
        (lambda d: d["services"][0].update(traffic={"router": "gateway-api", "route": "web", "rule": "Main Rule"}),
         "service 'helloworld', traffic.rule: must be the rule's index"),
        (lambda d: d["services"][0].update(traffic={"route": "web"}),
         "service 'helloworld', traffic.route: is for the router gateway-api"),
        (lambda d: d["services"][1].update(traffic={"router": "gateway-api", "route": "web"}),
         "service 'payments', mappings: is for the router emissary"),
        (lambda d: d["services"][0].update(traffic={"router": "gateway-api", "route": "web",
                                                    "backends": {"stable": "Web_1"}}),
         "service 'helloworld', traffic.backends.stable: 'Web_1' is not a DNS-1123 name"),
    ],
)
def test_a_malformed_catalogue_names_the_file_the_service_and_the_field(
        tmp_path: Path, change: Any, message: str) -> None:
    path = write(tmp_path, edited(change))
    with pytest.raises(ConfigError) as caught:
        load_catalogue(load({**BASE, "HELLO_SERVICES": str(path)}))
    assert str(caught.value).startswith(f"{path}: "), caught.value
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["services"][0].update(namspace="hello"), "service 'helloworld', namspace: unknown field"),
        (lambda d: d["services"][0]["environments"][0].update(contxt="x"),
         "service 'helloworld', environments[0].contxt: unknown field"),
        (lambda d: d["services"][0]["analysis"].update(intervall="30s"),
         "service 'helloworld', analysis.intervall: unknown field (expected one of: enabled, steps"),
        (lambda d: d["services"][1].update(deployments={"stabel": "x"}),
         "service 'payments', deployments.stabel: unknown field (expected one of: stable, canary)"),
        (lambda d: d.update(service=[]), "service: unknown field (expected one of: services)"),
    ],
)
def test_an_unknown_field_is_refused(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="unknown field") as caught:
        catalogue_from(tmp_path, edited(change))
    assert message in str(caught.value)


def test_a_service_routed_by_an_httproute_names_its_rule_and_its_two_services(tmp_path: Path) -> None:
    data = yaml.safe_load(VALID)
    data["services"][0]["traffic"] = {"router": "gateway-api", "route": "web", "rule": "split"}
    data["services"][1].pop("mappings")
    data["services"][1]["traffic"] = {"router": "gateway-api", "route": "pay", "rule": 2,
                                      "backends": {"stable": "pay-main", "canary": "pay-next"}}
    catalogue = catalogue_from(tmp_path, yaml.safe_dump(data))
    base = load(BASE)
    hello = catalogue.service("helloworld").config_for("staging", base).traffic
    assert hello == Traffic(router="gateway-api", route="web", rule="split", stable_service="helloworld",
                            canary_service="helloworld-canary")  # the Services default to the Deployments' names
    pay = catalogue.service("payments").config_for("production", base).traffic
    assert (pay.route, pay.rule, pay.stable_service, pay.canary_service) == ("pay", 2, "pay-main", "pay-next")
    assert catalogue_from(tmp_path, VALID).service("payments").config_for("staging", base).traffic == Traffic()


def test_broken_yaml_and_a_missing_file_are_named_without_quoting_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        catalogue_from(tmp_path, 'services:\n  - name: "zz-secret-zz\n')
    assert f"{tmp_path / 'services.yaml'}: not valid YAML: line" in str(caught.value)
    assert "zz-secret-zz" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"HELLO_SERVICES: cannot read .*nowhere\.yaml"):
        load_catalogue(load({**BASE, "HELLO_SERVICES": str(tmp_path / "nowhere.yaml")}))


def test_default_environment_must_be_a_dns_label() -> None:
    with pytest.raises(ConfigError, match="HELLO_DEFAULT_ENVIRONMENT must be a DNS-1123 label"):
        load({**BASE, "HELLO_DEFAULT_ENVIRONMENT": "Prod!"})


# ------------------------------------------------------------------------------ the variables' catalogue


def test_without_hello_services_the_variables_are_a_catalogue_of_one() -> None:
    config = load({**BASE, "HELLO_NAMESPACE": "shop", "HELLO_STABLE_DEPLOYMENT": "web",
                   "HELLO_CANARY_DEPLOYMENT": "web-canary", "HELLO_STABLE_MAPPING": "web-map",
                   "HELLO_CANARY_MAPPING": "web-map-canary", "HELLO_CERTIFICATE": "web-tls",
                   "HELLO_CONTAINER": "main", "HELLO_IMAGE_REPOSITORY": "reg.example.com/web",
                   "HELLO_VERSION_PATTERN": "^[0-9]+$", "HELLO_DEPLOYERS": "U1,S2", "HELLO_APPROVERS": "S3",
                   "HELLO_OPS_CHANNELS": "C9", "HELLO_KUBE_CONTEXT": "prod-ctx", "HELLO_METRICS_PRESET": "envoy"})
    catalogue = load_catalogue(config)
    assert catalogue == Catalogue(services=(Service(
        name="web",
        environments=(Environment(name="default", namespace="shop", context="prod-ctx"),),
        stable_deployment="web", canary_deployment="web-canary", stable_mapping="web-map",
        canary_mapping="web-map-canary", container="main", certificate="web-tls",
        image_repository="reg.example.com/web", version_pattern="^[0-9]+$", metrics_preset="envoy",
        channels=("C9",), deployers=("U1", "S2"), approvers=("S3",),
        lock=LockMode.REFUSE,  # a second request is refused, as it always was without a catalogue
    ),), default_environment="default")
    service, env = catalogue.resolve(None, None, "C-ANYWHERE")
    # handed back, the one service's Config is the Config the variables made
    assert service.config_for(env, config) == config
    assert load_catalogue(load(BASE)).services[0].config_for("default", load(BASE)) == load(BASE)


def test_the_environment_of_the_catalogue_of_one_is_named_by_hello_default_environment() -> None:
    catalogue = load_catalogue(load({**BASE, "HELLO_DEFAULT_ENVIRONMENT": "prod"}))
    assert catalogue.services[0].environment_names == ("prod",)
    assert catalogue.resolve(None, "prod", "C1")[1].name == "prod"


# ------------------------------------------------------------------------------ resolve()


def test_resolve_in_a_channel_of_one_service_may_leave_the_service_out(tmp_path: Path) -> None:
    catalogue = catalogue_from(tmp_path, VALID)
    service, env = catalogue.resolve(None, None, "C0PAY")
    assert (service.name, env.name) == ("payments", "staging")  # the service's first environment
    service, env = catalogue.resolve(None, "production", "C0HELLO")
    assert (service.name, env.name) == ("helloworld", "production")
    service, env = catalogue.resolve("payments", "production", "C0HELLO")  # a name wins over the channel
    assert (service.name, env.name) == ("payments", "production")


def test_resolve_prefers_hello_default_environment_where_the_service_runs_there(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    catalogue = load_catalogue(load({**BASE, "HELLO_SERVICES": str(path), "HELLO_DEFAULT_ENVIRONMENT": "production"}))
    assert catalogue.resolve("payments", None, "C1")[1].name == "production"
    only_staging = edited(lambda d: d["services"][1].update(environments=[d["services"][1]["environments"][0]]))
    catalogue = load_catalogue(load({**BASE, "HELLO_SERVICES": str(write(tmp_path, only_staging, "b.yaml")),
                                     "HELLO_DEFAULT_ENVIRONMENT": "production"}))
    assert catalogue.resolve("payments", None, "C1")[1].name == "staging"


def test_resolve_lists_what_exists_when_the_name_is_ambiguous_or_unknown(tmp_path: Path) -> None:
    catalogue = catalogue_from(tmp_path, VALID)
    with pytest.raises(UsageError, match="this channel has several services, name one: helloworld, payments"):
        catalogue.resolve(None, None, "C0SHARED")
    with pytest.raises(UsageError, match="name a service: helloworld, payments"):
        catalogue.resolve(None, None, "C0ELSEWHERE")
    with pytest.raises(UsageError, match="there is no service billing; services: helloworld, payments"):
        catalogue.resolve("billing", None, "C0PAY")
    with pytest.raises(UsageError, match="payments has no environment qa; its environments: staging, production"):
        catalogue.resolve(None, "qa", "C0PAY")
    with pytest.raises(UsageError) as caught:
        catalogue.resolve("<!channel>", None, "C0PAY")
    assert "<!channel>" not in str(caught.value)  # what the user typed is escaped before it is shown


# ------------------------------------------------------------------------------ config_for()


def test_config_for_applies_names_namespace_cluster_access_and_overrides(tmp_path: Path) -> None:
    base = load({**BASE, "HELLO_DEPLOYERS": "U7", "HELLO_APPROVERS": "U8", "HELLO_OPS_CHANNELS": "C7",
                 "HELLO_KUBE_CONTEXT": "ctx", "HELLO_BAKE_MINUTES": "5", "PROMETHEUS_URL": "http://prom:9090"})
    catalogue = catalogue_from(tmp_path, VALID)
    hello, pay = catalogue.services

    prod = hello.config_for("production", base)
    assert (prod.namespace, prod.kube_context, prod.kube_in_cluster) == ("hello-prod", "production", False)
    assert prod.image_repository == "registry.example.com/hello/helloworld" and prod.version_pattern == r"^v\d+$"
    assert prod.ops_channels == ("C0HELLO", "C0SHARED")
    assert (prod.deployers, prod.approvers) == (("U0DEP", "S0TEAM"), ("S0PROD",))  # environment > service
    assert prod.prometheus_url == "http://prometheus.prod:9090"
    assert (prod.canary_steps, prod.canary_gates, prod.analysis_interval_seconds) == ((5, 50), (50,), 30.0)
    assert (prod.analysis_min_requests, prod.analysis_max_latency_ratio, prod.analysis_min_success) == (20, 2.0, 99.5)
    assert (prod.analysis_max_inconclusive, prod.analysis_mode) == (4, "advise")
    assert (prod.bake_minutes, prod.auto_rollback) == (30.0, False)
    assert hello.config_for("staging", base).approvers == ("S0APPROVE",)
    assert hello.config_for("staging", base).prometheus_url == "http://prom:9090"

    pay_prod = pay.config_for(pay.environments[1], base)
    assert (pay_prod.namespace, pay_prod.kube_context, pay_prod.kube_in_cluster) == ("payments", "", True)
    assert (pay_prod.stable_deployment, pay_prod.canary_deployment) == ("payments-v", "payments-v-canary")
    assert (pay_prod.stable_mapping, pay_prod.canary_mapping) == ("pay", "pay-canary")
    assert (pay_prod.container, pay_prod.certificate, pay_prod.image_repository) == ("app", "pay-tls", "payments")
    assert replace(pay_prod.metrics, window_queries=()) == MetricNames.envoy()
    own = dict(pay_prod.metrics.window_queries)
    assert own["requests"] == "sum by (envoy_cluster_name) (increase(rq_total[$window]))"
    assert (pay_prod.deployers, pay_prod.approvers) == (("U7",), ("U8",))  # not in the catalogue: the variables
    assert (pay_prod.bake_minutes, pay_prod.canary_steps) == (5.0, base.canary_steps)
    # everything the catalogue does not describe stays as the variables say
    assert (pay_prod.slack_bot_token, pay_prod.state_configmap) == (base.slack_bot_token, base.state_configmap)
    with pytest.raises(ValueError, match="not one of payments'"):
        pay.config_for(hello.environments[1], base)


def test_a_services_metrics_are_its_own_queries_or_its_namespaces_series(tmp_path: Path) -> None:
    from bot.observe.prom import window_expressions

    base = load(BASE)
    catalogue = catalogue_from(tmp_path, """
services:
  - name: web
    environments: [{name: prod, namespace: shop}]
  - name: pay
    environments: [{name: prod, namespace: payments}]
    metrics:
      queries:
        requests: sum by (version) (increase(pay_total[$window]))
        errors: sum by (version) (increase(pay_total{code="500"}[$window]))
        p50: histogram_quantile(0.5, sum by (le, version) (increase(pay_seconds_bucket[$window])))
        p99: histogram_quantile(0.99, sum by (le, version) (increase(pay_seconds_bucket[$window])))
""")
    web, pay = catalogue.services
    shared = web.config_for("prod", base, by_namespace=True)
    exprs = window_expressions(shared.metrics, 300)
    assert 'namespace="shop"' in exprs["requests"] and 'namespace="shop"' in exprs["p99"]
    assert "namespace=" not in window_expressions(web.config_for("prod", base).metrics, 300)["requests"]
    own = window_expressions(pay.config_for("prod", base, by_namespace=True).metrics, 120)
    assert own == {"requests": "sum by (version) (increase(pay_total[120s]))",
                   "errors": 'sum by (version) (increase(pay_total{code="500"}[120s]))',
                   "p50": "histogram_quantile(0.5, sum by (le, version) (increase(pay_seconds_bucket[120s])))",
                   "p99": "histogram_quantile(0.99, sum by (le, version) (increase(pay_seconds_bucket[120s])))"}


# ------------------------------------------------------------------------------ python -m bot


def _env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HELLO_", "PROMETHEUS", "KUBECONFIG"))}
    return {**base, **extra}


async def _run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot", *args], cwd=ROOT, env=_env(env),
                                   capture_output=True, text=True, timeout=timeout)


async def test_serve_and_check_stop_on_a_malformed_catalogue_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, edited(lambda d: d["services"][1]["environments"][1].pop("namespace")))
    env = {**BASE, "HELLO_SERVICES": str(path)}
    serve, check = await asyncio.gather(_run(["serve", "--port", "0"], env, timeout=30), _run(["check"], env))
    wanted = f"{path}: service 'payments', environments[1].namespace: required"
    assert serve.returncode == 2 and f"configuration error: {wanted}" in serve.stderr, serve.stderr
    assert check.returncode == 1 and f"configuration  failed  {wanted}" in check.stdout, check.stdout
    assert "zz-signing-secret-zz" not in serve.stderr + check.stdout


async def test_check_reports_every_service_in_every_environment(
        catalogue_file: Callable[..., Path], kubeconfig: Callable[..., Path]) -> None:
    from sandbox.kube import KubeEmulator
    from sandbox.prometheus import PrometheusServer
    from sandbox.slack import SlackEmulator

    services = catalogue_file(catalogue(
        service("helloworld", "hello"),
        service("payments", "hello", environments=("staging",),
                deployments={"stable": "payments", "canary": "payments-canary"})))
    async with (SlackEmulator(signing_secret="s", bot_token="xoxb-check") as slack,
                KubeEmulator(tick=0.05) as staging, KubeEmulator(tick=0.05) as production,
                PrometheusServer(scrape_interval="1s") as prom):
        for emulator in (staging, production):
            emulator.seed(ROOT / "manifests")
        contexts = kubeconfig({"staging": staging, "production": production})  # staging is the current one
        result = await _run(["check"], {
            "SLACK_BOT_TOKEN": "xoxb-check", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": slack.api_url,
            "KUBECONFIG": str(contexts), "PROMETHEUS_URL": prom.url, "PROMETHEUS_TIMEOUT": "5",
            "HELLO_SERVICES": str(services),
        })
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert list(lines) == ["configuration", "slack", "helloworld/staging", "helloworld/production",
                           "payments/staging", "state"], result.stdout + result.stderr
    for name in ("helloworld/staging", "helloworld/production"):
        assert lines[name].split()[1] == "ok", lines[name]
        assert "namespace hello: deployments helloworld, helloworld-canary" in lines[name]
        assert "prometheus ok, Prometheus" in lines[name]
        assert "certificate helloworld-tls; allowed all 23 verbs" in lines[name]  # no RBAC: all allowed
        assert "watches: certificates, deployments, events, mappings watching" in lines[name]
    # the bot's state (ConfigMaps, the Lease) in HELLO_NAMESPACE of its own cluster (the current context)
    assert lines["state"].split(None, 2)[1:] == [
        "ok", f"kubernetes ok, {staging.url}, namespace hello: allowed all 9 verbs on configmaps and leases"]
    assert staging.url in lines["helloworld/staging"] and production.url in lines["helloworld/production"]
    # the manifests hold no payments Deployment: named, with the reason, and the exit status says so
    assert lines["payments/staging"].split()[1] == "failed"
    assert ("kubernetes failed: deployments/payments not found, deployments/payments-canary not found"
            in lines["payments/staging"])
    assert result.returncode == 1

