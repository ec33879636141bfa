"""Gateway, certificate and load-balancer manifests agree with each other: the Host serves the
Secret the Certificate fills, the ACME challenge reaches cert-manager's solver, the Listeners
accept the Host, and MetalLB announces the pool it defines."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
HOSTNAME = "hello.example.com"


def _folder(name: str) -> list[dict[str, Any]]:
    folder = MANIFESTS / name
    docs: list[dict[str, Any]] = []
    for entry in yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]:
        docs.extend(d for d in yaml.safe_load_all((folder / entry).read_text()) if d is not None)
    return docs


def _only(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def gateway() -> list[dict[str, Any]]:
    return _folder("gateway")


@pytest.fixture(scope="module")
def certs() -> list[dict[str, Any]]:
    return _folder("cert-manager")


@pytest.fixture(scope="module")
def metallb() -> list[dict[str, Any]]:
    return _folder("metallb")


def test_listeners_open_8080_for_http_and_8443_for_https(gateway: list[dict[str, Any]]) -> None:
    listeners = {o["spec"]["port"]: o for o in gateway if o["kind"] == "Listener"}
    assert sorted(listeners) == [8080, 8443]
    assert listeners[8080]["spec"]["protocol"] == "HTTP"
    assert listeners[8443]["spec"]["protocol"] == "HTTPS"
    for listener in listeners.values():
        spec = listener["spec"]
        # The CRD's rule: exactly one of protocol and protocolStack.
        assert ("protocol" in spec) != ("protocolStack" in spec)
        assert spec["securityModel"] in ("XFP", "SECURE", "INSECURE")
        assert listener["metadata"]["namespace"] == "emissary"
    # Cleartext on 8080 must count as insecure, so the Host's Redirect applies to it.
    assert listeners[8080]["spec"]["securityModel"] in ("XFP", "INSECURE")
    assert listeners[8443]["spec"]["securityModel"] in ("XFP", "SECURE")


def test_listeners_bind_the_host_in_hello(gateway: list[dict[str, Any]]) -> None:
    host = _only(gateway, "Host")
    for listener in (o for o in gateway if o["kind"] == "Listener"):
        binding = listener["spec"]["hostBinding"]
        source = binding["namespace"]["from"]
        same_namespace = listener["metadata"]["namespace"] == host["metadata"]["namespace"]
        assert source == "ALL" or (source == "SELF" and same_namespace)
        selector = binding.get("selector", {}).get("matchLabels", {})
        assert selector.items() <= host["metadata"].get("labels", {}).items()


def test_host_terminates_tls_with_the_certificate_secret_and_redirects(
    gateway: list[dict[str, Any]], certs: list[dict[str, Any]]
) -> None:
    host = _only(gateway, "Host")
    certificate = _only(certs, "Certificate", "helloworld-tls")
    assert host["spec"]["hostname"] == HOSTNAME
    assert host["spec"]["tlsSecret"] == {"name": certificate["spec"]["secretName"]}
    assert host["metadata"]["namespace"] == certificate["metadata"]["namespace"] == "hello"
    assert host["spec"]["requestPolicy"]["insecure"]["action"] == "Redirect"
    assert host["spec"]["acmeProvider"]["authority"].lower() == "none"


def test_acme_challenge_reaches_the_solver_pods_in_the_certificate_namespace(
    gateway: list[dict[str, Any]], certs: list[dict[str, Any]]
) -> None:
    mapping = _only(gateway, "Mapping", "acme-challenge")
    certificate = _only(certs, "Certificate", "helloworld-tls")
    assert mapping["spec"]["prefix"] == "/.well-known/acme-challenge/"
    assert mapping["spec"]["rewrite"] == ""
    assert mapping["spec"]["hostname"] in (HOSTNAME, "*")
    service_name, _, port = mapping["spec"]["service"].partition(":")
    service = _only(gateway, "Service", service_name)
    # cert-manager starts the solver Pods in the Certificate's namespace; a Service only
    # selects Pods of its own namespace, and the Mapping names the Service without one.
    assert service["metadata"]["namespace"] == mapping["metadata"]["namespace"] == certificate["metadata"]["namespace"]
    assert service["spec"]["selector"] == {"acme.cert-manager.io/http01-solver": "true"}
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == 8089
    assert str(service_port["port"]) == (port or "80")


def test_cluster_issuers_use_lets_encrypt_http01_through_cluster_ip(certs: list[dict[str, Any]]) -> None:
    servers = {
        "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
        "letsencrypt-prod": "https://acme-v02.api.letsencrypt.org/directory",
    }
    for name, server in servers.items():
        acme = _only(certs, "ClusterIssuer", name)["spec"]["acme"]
        assert acme["server"] == server
        assert acme["email"].endswith("@example.com")  # a placeholder, commented as such
        assert acme["privateKeySecretRef"]["name"]
        (solver,) = acme["solvers"]
        assert solver["http01"]["ingress"]["serviceType"] == "ClusterIP"
    for path in (MANIFESTS / "cert-manager").glob("clusterissuer-*.yaml"):
        assert "Placeholder" in path.read_text()


def test_certificate_lifetime_and_default_issuer(certs: list[dict[str, Any]]) -> None:
    spec = _only(certs, "Certificate", "helloworld-tls")["spec"]
    assert spec["secretName"] == "helloworld-tls"
    assert spec["dnsNames"] == [HOSTNAME]
    assert (spec["duration"], spec["renewBefore"]) == ("2160h", "720h")
    assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "letsencrypt-staging"}
    _only(certs, "ClusterIssuer", spec["issuerRef"]["name"])
    assert "letsencrypt-prod" in (MANIFESTS / "cert-manager" / "certificate.yaml").read_text()


def test_metallb_pool_is_a_documented_placeholder_announced_in_layer_2(metallb: list[dict[str, Any]]) -> None:
    pool = _only(metallb, "IPAddressPool")
    advert = _only(metallb, "L2Advertisement")
    assert pool["metadata"]["namespace"] == advert["metadata"]["namespace"] == "metallb-system"
    assert advert["spec"]["ipAddressPools"] == [pool["metadata"]["name"]]
    for entry in pool["spec"]["addresses"]:
        if "-" in entry:
            first, last = (ipaddress.ip_address(part.strip()) for part in entry.split("-"))
            assert first <= last
        else:
            ipaddress.ip_network(entry)
    text = (MANIFESTS / "metallb" / "ipaddresspool.yaml").read_text()
    assert "change" in text.lower()


def test_every_mapping_in_the_tree_is_served_by_the_host(built: list[dict[str, Any]]) -> None:
    """Mappings attach to Hosts by hostname: helloworld's, the bot's and the ACME route must all
    name the Host's, or Emissary would not route them on hello.example.com."""
    host = _only(built, "Host")
    mappings = [o for o in built if o["kind"] == "Mapping"]
    names = {m["metadata"]["name"] for m in mappings}
    assert {"helloworld", "helloworld-canary", "hello-chatops", "acme-challenge"} <= names
    for mapping in mappings:
        assert mapping["spec"].get("hostname", "*") in (host["spec"]["hostname"], "*"), mapping["metadata"]["name"]
    weights = [m["spec"].get("weight", 0) for m in mappings if m["spec"]["prefix"] == "/hello/"]
    assert sum(weights) <= 100
