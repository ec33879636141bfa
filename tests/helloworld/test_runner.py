"""helloworld.runner: start, context manager, stop, and a clear error when start-up fails."""

from __future__ import annotations

import socket

import httpx
import pytest

from helloworld.runner import StartError, free_port, start


def test_start_on_a_chosen_port_and_stop() -> None:
    port = free_port()
    with start("v3.0.1", port=port, drain_seconds=1) as service:
        assert service.port == port
        assert service.url == f"http://127.0.0.1:{port}"
        assert service.version == "v3.0.1"
        assert service.process.poll() is None
        assert httpx.get(f"{service.url}/v1/hello", timeout=10).json()["version"] == "v3.0.1"
    assert service.process.returncode == 0


def test_failed_start_raises_with_the_process_stderr() -> None:
    with pytest.raises(StartError) as failure:
        start("v1", env={"HELLO_FAULT_LATENCY_MS": "abc"})
    message = str(failure.value)
    assert "exited with code 2" in message
    assert "HELLO_FAULT_LATENCY_MS" in message


def test_port_in_use_is_a_clear_start_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartError) as failure:
            start("v1", port=port)
    message = str(failure.value)
    assert "exited with code 1" in message
    assert f"cannot listen on 127.0.0.1:{port}" in message
    assert "Traceback" not in message
