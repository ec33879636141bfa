"""Analysed canaries in the sandbox, against the real Prometheus and real helloworld processes.

`/hello canary v2-faulty` (a fifth of its requests fail) is aborted by the analysis at its first
decisive look, with a verdict card in the release's thread that shows the bounds and the limit, and
never a "passed" card; `/hello canary v2` walks its steps, with the load the default `auto` adds to decide
sooner, and offers the promotion; with no traffic at all the canary holds and asks a person. Intervals are
shortened, the judge is the real one. A pass needs
evidence (a healthy canary without errors passes the 0.5-point tolerance after about 530 requests at
90% confidence), so the steps are 30% and 60% of 40 requests/s.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests.e2e.console_chat import CHANNEL
from tests.e2e.console_chat import ask_and_approve as _ask_and_approve
from tests.e2e.console_chat import button as _button
from tests.e2e.console_chat import find as _find
from tests.e2e.console_chat import messages as _messages
from tests.e2e.console_chat import text as _text

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(180),
              pytest.mark.skipif(shutil.which("prometheus") is None,
                                 reason="the prometheus binary is not installed (./dev.sh installs it)")]

FAST = {"HELLO_ANALYSIS_INTERVAL": "4s", "HELLO_ANALYSIS_MIN_REQUESTS": "20", "HELLO_CANARY_STEPS": "30,60"}


def test_a_faulty_canary_is_aborted_and_a_healthy_one_walks_its_steps(launch_sandbox, tools) -> None:
    proc = launch_sandbox(env={"HELLO_SANDBOX_RPS": "40", **FAST})
    seen: set[str] = set()
    faulty = _ask_and_approve(tools, proc, "/hello canary v2-faulty", seen)
    final = _find(tools, proc, lambda m: m["ts"] == faulty["ts"] and "Finished ·" in _text(m), 90,
                  "the faulty canary's end")
    assert "failed analysis at 30% and was aborted" in final["text"], final["text"]
    cards = [m for m in _messages(tools, proc) if m.get("thread_ts") == faulty["ts"]]
    assert not [c for c in cards if "analysis passed" in c["text"]], [c["text"] for c in cards]
    failed = [c for c in cards if "analysis failed" in c["text"]]
    assert len(failed) == 1, [c["text"] for c in cards]
    card = _text(failed[0])
    assert "under the SLO" in card and "90% bounds" in card and "SLO at least 99%" in card, card
    charts = _find(tools, proc, lambda m: m.get("thread_ts") == faulty["ts"] and m.get("files"), 30,
                   "the chart of the analysed windows")
    assert charts["files"][0]["name"].endswith(".png")
    assert "the shaded bands are the analysed steps" in charts["text"], charts["text"]  # it says what it shows

    healthy = _ask_and_approve(tools, proc, "/hello canary v2", seen)
    final = _find(tools, proc, lambda m: m["ts"] == healthy["ts"] and "Finished ·" in _text(m), 120,
                  "the healthy canary's end")
    assert "passed analysis at 30% → 60%" in final["text"], final["text"]
    assert _button(final, "release_promote") is not None
    # the default HELLO_ANALYSIS_LOAD_RPS=auto: 12 canary requests/s would need many looks, so load was added
    assert re.search(r"load: \d+ req/s to each track \(auto\)", _text(final)), _text(final)


def test_with_no_traffic_the_canary_holds_and_asks_a_person(launch_sandbox, tools) -> None:
    proc = launch_sandbox(env={"HELLO_SANDBOX_RPS": "0", **FAST, "HELLO_ANALYSIS_INTERVAL": "2s",
                               "HELLO_ANALYSIS_MAX_INCONCLUSIVE": "2"})
    request = _ask_and_approve(tools, proc, "/hello canary v2", set())
    asking = _find(tools, proc, lambda m: m["ts"] == request["ts"] and _button(m, "analysis_continue"), 60,
                   "the question to a person")
    assert "could not judge the canary" in _text(asking)
    # Prometheus has no series of the canary yet ("no data") or counts none of its requests ("0 requests"): either
    # way the look had nothing to judge, and the message says which
    assert "no data for the canary" in _text(asking) or "0 requests to the canary" in _text(asking), _text(asking)


def test_status_warns_about_a_manual_canary_significantly_worse_than_stable(launch_sandbox, tools) -> None:
    proc = launch_sandbox(env={"HELLO_SANDBOX_RPS": "40", **FAST})
    request = _ask_and_approve(tools, proc, "/hello canary v2-faulty 30%", set())
    _find(tools, proc, lambda m: m["ts"] == request["ts"] and "Finished ·" in _text(m), 60, "the canary at 30%")

    def warned() -> dict | None:
        """Ask for the status again; the newest one that warns about the canary, if any."""
        asked = {"user": "U3", "channel": CHANNEL, "text": "/hello status"}
        assert tools.post_json(f"{proc.url}/api/command", asked)["ok"]
        return next((m for m in reversed(_messages(tools, proc))
                     if m["text"].startswith("helloworld status") and "significantly worse than stable" in _text(m)),
                    None)

    status = tools.wait_until(warned, 60, "a status warning about the canary", interval=2.0)
    assert "canary v2-faulty at 30%" in _text(status)
