"""`/hello chart` end to end: signed command -> bot -> real Prometheus -> PNG uploaded into the channel."""

from __future__ import annotations

import asyncio
import io
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
from matplotlib.image import imread

from helloworld.runner import start
from sandbox.prometheus import PrometheusServer
from sandbox.slack import Ephemeral, FileRecord
from sandbox.stack import Stack

pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def prometheus_with_traffic() -> Iterator[str]:
    """Prometheus scraping helloworld v1 while a bounded load (loopback, ~8 s) runs."""
    with start("v1") as v1, PrometheusServer(scrape_interval="1s",
                                             targets=[(f"127.0.0.1:{v1.port}", {"track": "stable"})]) as prom:
        stop = threading.Event()

        def load() -> None:
            for _ in range(400):
                if stop.is_set():
                    return
                urllib.request.urlopen(f"{v1.url}/v1/hello", timeout=2).read()
                time.sleep(0.02)

        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        deadline = time.monotonic() + 40
        query = f"{prom.url}/api/v1/query?query=sum(helloworld_requests_total)"
        while b'"value"' not in urllib.request.urlopen(query, timeout=2).read() or thread.is_alive():
            assert time.monotonic() < deadline, "Prometheus never saw the load"
            time.sleep(0.2)
        # rate() needs two scrapes of the counter: wait until it has a value
        rate = f"{prom.url}/api/v1/query?query=sum(rate(helloworld_requests_total%5B1m%5D))"
        while b'"value"' not in urllib.request.urlopen(rate, timeout=2).read():
            assert time.monotonic() < deadline, "Prometheus never computed a rate"
            time.sleep(0.2)
        try:
            yield prom.url
        finally:
            stop.set()
            thread.join(timeout=5)


@pytest.fixture
async def stack(prometheus_with_traffic: str) -> AsyncIterator[Stack]:
    async with Stack(prometheus_url=prometheus_with_traffic) as s:
        yield s


async def newest_upload(stack: Stack, before: int) -> FileRecord:
    deadline = asyncio.get_running_loop().time() + 30
    while len(stack.slack.files) <= before or not list(stack.slack.files.values())[-1].completed:
        assert asyncio.get_running_loop().time() < deadline, "no chart was uploaded"
        await asyncio.sleep(0.05)
    return list(stack.slack.files.values())[-1]


async def test_chart_is_uploaded_into_the_channel(stack: Stack) -> None:
    before = len(stack.slack.files)
    reply = await stack.command("U3", "/hello chart traffic 15m")
    assert reply.status == 200
    upload = await newest_upload(stack, before)
    image = imread(io.BytesIO(stack.slack.file_bytes(upload.id)), format="png")
    assert image.shape[:2] == (450, 1200)  # a single panel
    assert upload.title == "helloworld traffic, last 15m (UTC)"
    assert upload.channels == ["C1"] and upload.thread_ts is None  # straight into the channel


async def test_bad_chart_arguments_are_refused_privately(stack: Stack) -> None:
    reply = await stack.command("U3", "/hello chart pie")
    assert reply.json["response_type"] == "ephemeral"
    assert "`pie` is neither a chart" in reply.json["text"]
    assert "Usage: /hello chart" in reply.json["text"]


async def test_chart_without_prometheus_says_why() -> None:
    async with Stack(prometheus_url="http://127.0.0.1:9") as stack:
        await stack.command("U3", "/hello chart")
        note = await stack.wait_message(lambda m: isinstance(m, Ephemeral) and "metrics unavailable" in m.text)
        assert "connection refused" in note.text
        assert len(stack.slack.files) == 0


async def test_chart_with_no_traffic_says_so() -> None:
    with PrometheusServer(scrape_interval="1s") as prom:
        async with Stack(prometheus_url=prom.url) as stack:
            await stack.command("U3", "/hello chart 15m")
            note = await stack.wait_message(lambda m: isinstance(m, Ephemeral) and "No traffic" in m.text)
            assert note.text == "No traffic in the last 15m: nothing to chart."


async def test_status_threads_its_chart_under_the_status_message(stack: Stack) -> None:
    from sandbox.slack import Message

    before = len(stack.slack.files)
    await stack.command("U3", "/hello status 15m")
    upload = await newest_upload(stack, before)
    status = next(m for m in stack.slack.messages("C1") if isinstance(m, Message)
                  and m.text.startswith("helloworld status"))
    assert upload.thread_ts == status.ts
    assert imread(io.BytesIO(stack.slack.file_bytes(upload.id)), format="png").shape[:2] == (900, 1200)
    assert "`v1`" in str(status.blocks) and " ok · p99 " in str(status.blocks)  # figures per version
