"""Every route and every bad input, against a real ``python -m helloworld`` process."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from datetime import datetime

import httpx
import pytest

from helloworld.runner import Running

from .conftest import PROJECT_ROOT, RELEASE


def test_v1_hello_reports_the_release(hw_client: httpx.Client) -> None:
    answer = hw_client.get("/v1/hello")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"message": "Hello, world!", "version": RELEASE}


def test_v2_hello_greets_by_name(hw_client: httpx.Client) -> None:
    answer = hw_client.get("/v2/hello", params={"name": "Ada"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["message"] == "Hello, Ada!"
    assert body["version"] == RELEASE
    assert body["api"] == "v2"
    assert body["pod"] == socket.gethostname()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["time"])
    sent = datetime.fromisoformat(body["time"])
    assert sent.utcoffset() is not None and sent.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("query", ["", "?name=", "?name=%20%20"])
def test_v2_hello_without_a_name_greets_the_world(hw_client: httpx.Client, query: str) -> None:
    answer = hw_client.get(f"/v2/hello{query}")
    assert answer.status_code == 200
    assert answer.json()["message"] == "Hello, world!"


def test_v2_hello_keeps_unicode_names(hw_client: httpx.Client) -> None:
    answer = hw_client.get("/v2/hello", params={"name": "Zoë 李"})
    assert answer.status_code == 200
    assert answer.json()["message"] == "Hello, Zoë 李!"


def test_name_of_64_characters_is_accepted_65_refused(hw_client: httpx.Client) -> None:
    assert hw_client.get("/v2/hello", params={"name": "a" * 64}).status_code == 200
    answer = hw_client.get("/v2/hello", params={"name": "a" * 65})
    assert answer.status_code == 400
    assert "64 characters" in answer.json()["error"]


@pytest.mark.parametrize("name", ["Ada\x00", "A\nda", "\x1bAda", "Ada\x7f", "Ada\u0085"])
def test_name_with_control_characters_is_refused(hw_client: httpx.Client, name: str) -> None:
    answer = hw_client.get("/v2/hello", params={"name": name})
    assert answer.status_code == 400
    assert "control characters" in answer.json()["error"]


@pytest.mark.parametrize(
    "raw_query", ["name=%ff%fe", "name=%", "name=%zz", "name=a&name=b", "name=" + "%e2%82" * 3, "=x&&=="]
)
def test_odd_query_strings_never_cause_a_server_error(hw_client: httpx.Client, raw_query: str) -> None:
    answer = hw_client.get(f"/v2/hello?{raw_query}")
    assert answer.status_code in (200, 400), answer.text
    assert answer.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/", "/hello", "/v1/hello/extra", "/v1", "/favicon.ico", "/v1/hello%00"])
def test_unknown_paths_are_404_json(hw_client: httpx.Client, path: str) -> None:
    answer = hw_client.get(path)
    assert answer.status_code == 404
    assert answer.json()["error"]


@pytest.mark.parametrize("api", ["v3", "v0", "v10"])
def test_unknown_api_versions_are_404_json(hw_client: httpx.Client, api: str) -> None:
    answer = hw_client.get(f"/{api}/hello")
    assert answer.status_code == 404
    body = answer.json()
    assert body["error"] == f"unknown API version {api}"
    assert body["known"] == ["v1", "v2"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/v1/hello", "/v2/hello", "/healthz", "/readyz", "/metrics"])
def test_wrong_method_is_405_json(hw_client: httpx.Client, method: str, path: str) -> None:
    answer = hw_client.request(method, path)
    assert answer.status_code == 405
    assert answer.json()["error"] == f"method {method} not allowed"
    assert answer.headers["allow"] == "GET"


def test_healthz_and_readyz_answer_200_while_serving(hw_client: httpx.Client) -> None:
    health = hw_client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "version": RELEASE}
    ready = hw_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "version": RELEASE, "in_flight": 1}


def test_access_log_is_json_lines(hw_client: httpx.Client, hw_service: Running) -> None:
    hw_client.get("/v2/hello", params={"name": "Logged"})
    lines = [json.loads(line) for line in hw_service.stdout_text().splitlines() if line.startswith("{")]
    logged = [line for line in lines if "name=Logged" in line["url"]]
    assert logged, "no access line for the request"
    assert logged[-1]["method"] == "GET"
    assert logged[-1]["status"] == 200
    assert logged[-1]["version"] == RELEASE
    assert isinstance(logged[-1]["duration_ms"], float)


def test_help_explains_flags_and_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helloworld", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=PROJECT_ROOT,
    )
    words = ["--host", "--port", "--workers", "--access-log", "--drain", "HELLO_VERSION", "HELLO_DRAIN_SECONDS"]
    words += ["HELLO_METRICS", "HELLO_FAULT_ERROR_RATE", "HELLO_FAULT_LATENCY_MS", "PROMETHEUS_MULTIPROC_DIR"]
    for word in words:
        assert word in result.stdout
