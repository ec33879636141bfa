"""The bake window in the sandbox: a faulty deploy, the service's real burn-rate alert in the real
Prometheus and Alertmanager, and the bot rolling it back by itself."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import pytest

from tests.e2e.console_chat import ask_and_approve, find, text

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(180),
              pytest.mark.skipif(shutil.which("prometheus") is None or (shutil.which("prometheus-alertmanager") is None
                                 and shutil.which("alertmanager") is None),
                                 reason="prometheus or alertmanager is not installed (./dev.sh installs both)")]


def _step_done(message: dict, title: str) -> bool:
    return f":white_check_mark: {title}" in json.dumps(message.get("blocks") or [], ensure_ascii=False)


def test_a_faulty_deploy_fires_the_burn_rate_alert_and_is_rolled_back(launch_sandbox, tools: Any) -> None:
    proc = launch_sandbox(env={"HELLO_SANDBOX_RPS": "20"})
    assert "ok Alertmanager" in proc.output, proc.output
    request = ask_and_approve(tools, proc, "/hello deploy v3-faulty", set())
    find(tools, proc, lambda m: m["ts"] == request["ts"] and _step_done(m, "Rolling out"), 60, "the rollout")
    rolled_out = time.monotonic()
    final = find(tools, proc, lambda m: m["ts"] == request["ts"] and "Finished ·" in text(m), 150,
                 "the automatic rollback")
    healthy = time.monotonic()
    assert "Rolled back to `v1` automatically" in final["text"], final["text"]
    assert "HelloworldErrorBudgetFastBurn" in final["text"]
    # the same alert reached the channel as a card through Alertmanager's webhook
    card = find(tools, proc, lambda m: m["ts"] != request["ts"] and "HelloworldErrorBudgetFastBurn" in m["text"]
                and m.get("thread_ts") in (None, m["ts"]), 60, "the alert card")
    assert "critical" in text(card).lower()
    find(tools, proc, lambda m: m["ts"] == card["ts"] and "rolled back to `v1` automatically by the bake window"
         in text(m), 60, "the card saying the bake window rolled back")
    print(f"deploy rolled out -> stable healthy again after the automatic rollback: {healthy - rolled_out:.1f} s")
