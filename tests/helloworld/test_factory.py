"""create_app is a factory: each call builds a fresh app from its settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sanic import Sanic
from sanic.exceptions import SanicException

from helloworld.app import APP_NAME, create_app
from helloworld.settings import Settings


@pytest.fixture
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(Sanic, "test_mode", True)
    yield
    try:
        Sanic.unregister_app(Sanic.get_app(APP_NAME))
    except SanicException:
        pass


def _paths(app: Sanic) -> set[str]:
    return {"/" + route.path for route in app.router.routes}


@pytest.mark.usefixtures("sanic_test_mode")
def test_two_apps_from_the_factory_in_one_process() -> None:
    with_metrics = create_app(Settings(version="v2"))
    without = create_app(Settings(version="v1", metrics_enabled=False))
    assert with_metrics is not without
    assert with_metrics.ctx.metrics.version == "v2"
    assert without.ctx.metrics is None
    assert _paths(with_metrics) == {"/v1/hello", "/v2/hello", "/healthz", "/readyz", "/metrics"}
    assert _paths(without) == {"/v1/hello", "/v2/hello", "/healthz", "/readyz"}
