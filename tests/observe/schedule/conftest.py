"""Fixtures for scheduled status posts: the emulated stack with one or two replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.stack import Stack
from tests.asyncio_checks import no_unretrieved_task_exceptions  # noqa: F401  (autouse)
from tests.harness.clock import ENV, KUBE


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with Stack(env=ENV, rbac=True, kube_options=KUBE, engine=False) as running:
        yield running


@pytest.fixture
async def pair() -> AsyncIterator[Stack]:
    """Two bot replicas (own Services, Messenger, Cluster client) on the same emulators."""
    async with Stack(env=ENV, rbac=True, replicas=2, kube_options=KUBE, engine=False) as running:
        yield running
