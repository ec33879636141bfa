"""Fixtures of the release tests: a chat (tests/harness/chat.py) with the cluster behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sandbox.alertmanager import AlertmanagerNotInstalled, AlertmanagerServer, find_binary
from tests.asyncio_checks import no_unretrieved_task_exceptions  # noqa: F401  (autouse)
from tests.harness.chat import Chat, release_stack


@pytest.fixture
async def chat() -> AsyncIterator[Chat]:
    async with release_stack() as c:
        yield c


@pytest.fixture
def release() -> Callable[..., Any]:
    """``async with release(rbac=..., replicas=..., env=..., kube=...) as chat:`` for tests that need options."""
    return release_stack


@pytest.fixture
async def alertmanager() -> AsyncIterator[AlertmanagerServer]:
    """The real Alertmanager on loopback (skipped, saying why, where it is not installed)."""
    try:
        find_binary()
    except AlertmanagerNotInstalled as exc:
        pytest.skip(str(exc))
    async with AlertmanagerServer() as server:
        yield server
