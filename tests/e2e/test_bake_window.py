"""The bake window in the sandbox: a faulty deploy, the service's real burn-rate alert in the real
Prometheus and Alertmanager, and the bot rolling it back by itself: a rollback release of its own that supersedes
the deploy."""

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
                 "the deploy superseded by the bot's rollback")
    assert "Superseded by rollback `" in final["text"] and "to `v1`, requested by the bot" in final["text"], \
        final["text"]
    assert "HelloworldErrorBudgetFastBurn" in final["text"]
    rollback_id = final["text"].split("Superseded by rollback `", 1)[1].split("`", 1)[0]
    # the rollback is a release of its own: its own message in the channel, its reason, rolled out
    rollback = find(tools, proc, lambda m: m["ts"] != request["ts"] and m.get("thread_ts") in (None, m["ts"])
                    and "critical alert HelloworldErrorBudgetFastBurn in the bake window" in text(m)
                    and _step_done(m, "Rolling out"), 90, "the rollback release rolled out")
    healthy = time.monotonic()
    assert "(no approval needed)" in text(rollback)
    # the same alert reached the channel as a card through Alertmanager's webhook
    card = find(tools, proc, lambda m: m["ts"] not in (request["ts"], rollback["ts"])
                and "HelloworldErrorBudgetFastBurn" in m["text"] and m.get("thread_ts") in (None, m["ts"]), 60,
                "the alert card")
    assert "critical" in text(card).lower()
    find(tools, proc, lambda m: m["ts"] == card["ts"] and f"rolled back to `v1` by the bot's rollback `{rollback_id}`"
         in text(m), 60, "the card naming the bake window's rollback")
    print(f"deploy rolled out -> stable healthy again after the bake window's rollback: {healthy - rolled_out:.1f} s")
