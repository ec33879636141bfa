"""The cluster layer: user-safe errors, parsing of objects, and the status assessment."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from kubernetes.aio.client.exceptions import ApiException

from bot.cluster.certificates import CertState
from bot.cluster.client import scrub, translate
from bot.cluster.deployments import image_version, track_from
from bot.cluster.kube import Deployed
from bot.cluster.traffic import Route, route_from
from bot.core.errors import Conflict, Forbidden, NotFound
from bot.observe.status import assess


def api_error(status: int, message: str, reason: str) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "message": message, "reason": reason, "code": status})
    return exc


def test_errors_become_project_errors_without_secrets() -> None:
    assert isinstance(translate(api_error(404, "x", "NotFound"), "get", "deployments", "a"), NotFound)
    assert isinstance(translate(api_error(409, "x", "Conflict"), "update", "configmaps", "s"), Conflict)
    err = translate(api_error(403, "Bearer abc.def token=xoxb-123", "Forbidden"), "patch", "deployments", "a")
    assert isinstance(err, Forbidden)
    assert str(err) == "the bot is not allowed to patch deployments/a (403 Forbidden)"
    invalid = translate(api_error(422, "weight must be <= 100, auth Bearer sekret", "Invalid"), "patch",
                        "mappings", "m")
    # The server's text is kept, scrubbed, and escaped for mrkdwn (CommandError messages are mrkdwn).
    assert "weight must be &lt;= 100" in str(invalid) and "sekret" not in str(invalid)
    assert "unreachable" in str(translate(ConnectionRefusedError(), "get", "deployments", "a"))


def test_scrub_removes_tokens() -> None:
    text = scrub("failed with Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl and xoxb-1-2-abc")
    assert "eyJ" not in text and "xoxb" not in text


def test_image_version() -> None:
    assert image_version("helloworld:v2") == "v2"
    assert image_version("registry:5000/team/helloworld:v2.1.0-rc1") == "v2.1.0-rc1"
    assert image_version("helloworld") == "latest"
    assert image_version("helloworld:v3@sha256:abc") == "v3"


def _deploy(ready: int, desired: int, *, stuck: bool = False) -> dict:
    conds = [{"type": "Progressing", "status": "False" if stuck else "True",
              "reason": "ProgressDeadlineExceeded" if stuck else "NewReplicaSetAvailable", "message": "m"}]
    return {"metadata": {"name": "helloworld", "generation": 2},
            "spec": {"replicas": desired, "template": {"spec": {"containers": [{"name": "helloworld",
                                                                                 "image": "helloworld:v2"}]}}},
            "status": {"observedGeneration": 2, "updatedReplicas": ready, "readyReplicas": ready,
                       "availableReplicas": ready, "conditions": conds}}


def _state(**kw: object) -> Deployed:
    base = dict(namespace="hello", stable=track_from("stable", _deploy(2, 2), "helloworld"),
                canary=track_from("canary", _deploy(1, 1), "helloworld"),
                stable_route=Route("helloworld", "helloworld:80", "/hello/", "h", None),
                canary_route=Route("helloworld-canary", "helloworld-canary:80", "/hello/", "h", 10),
                certificate=None)
    base.update(kw)
    return Deployed(**base)  # type: ignore[arg-type]


def test_healthy_state_has_no_warnings() -> None:
    assert assess(_state(), datetime.now(UTC)) == []
    assert track_from("stable", _deploy(2, 2), "helloworld").rolled_out


def test_each_warning() -> None:
    now = datetime.now(UTC)
    cert = CertState("helloworld-tls", True, "Ready", "", now - timedelta(days=80), now + timedelta(days=3),
                     now, 2, None, 0, None)
    warnings = assess(_state(certificate=cert), now)
    assert any("expires in 3 days" in w for w in warnings)
    stuck = assess(_state(stable=track_from("stable", _deploy(1, 2, stuck=True), "helloworld")), now)
    assert any("stable rollout is stuck" in w for w in stuck)
    empty = assess(_state(canary=track_from("canary", _deploy(0, 1), "helloworld")), now)
    assert "canary has 10% of traffic but no ready pods" in empty
    weights = assess(_state(stable_route=Route("helloworld", "s", "/", "h", 50)), now)
    assert "route weights don't add up: stable 50% + canary 10% = 60%" in weights
    over = assess(_state(canary_route=route_from({"metadata": {"name": "c"}, "spec": {"weight": 120}})), now)
    assert any("exceed 100%" in w for w in over)
