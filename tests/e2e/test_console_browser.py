"""In a real headless Chromium: status with its chart, then a canary asked by dana and approved by avery."""

from __future__ import annotations

import json
import re
import shutil
import urllib.request

import pytest

pytestmark = pytest.mark.e2e

CHART_LOADED = """() => [...document.querySelectorAll('.file img')]
    .some(img => img.complete && img.naturalWidth > 0)"""


@pytest.fixture
def page(chromium_path, tools):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=tools.chromium_args)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.js_errors = errors  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()


def send(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#composer", text)
    page.press("#composer", "Enter")


def open_channel(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Switch to a channel in the sidebar: the sandbox has #ops and one per service (#helloworld, #greeter);
    in a service's channel the commands act on that service without naming it."""
    names = {text.replace("#", "").strip() for text in page.locator("#channels li").all_inner_texts()}
    assert {"ops", "helloworld", "greeter"} <= names, names
    page.click(f"#channels li:has-text('{name}')")
    page.wait_for_function(f"document.querySelector('#tab-channel-name').textContent === '{name}'")


def test_status_chart_and_approved_canary(launch_sandbox, page, tools) -> None:  # type: ignore[no-untyped-def]
    if not shutil.which("prometheus"):
        pytest.fail("the prometheus binary is missing: install it with `apt-get install prometheus`; "
                    "the chart in this test needs it")
    sandbox = launch_sandbox()
    prometheus = sandbox.part_url("Prometheus")
    assert prometheus, sandbox.output
    # The chart needs data: Prometheus must have scraped the stable process while the load ran.
    tools.wait_until(lambda: tools.prometheus_rate(prometheus, "stable") > 0, 45,
                     "Prometheus to see the load generator's requests to the stable helloworld")

    page.goto(sandbox.url)
    page.wait_for_selector("body[data-ready=true]")
    assert "dana" in page.locator("#user-switcher").input_value() or \
        page.locator("#user-switcher").input_value() == "U1"
    assert "status|deploy|promote|canary" in page.inner_text("#hint")

    # In #ops, shared by both services, /hello status is one line per service and environment; choosing
    # one in its select posts that one's status.
    open_channel(page, "ops")
    send(page, "/hello status")
    details = page.locator(".msg select.msg-select").last
    details.wait_for()
    assert "greeter · production" in details.locator("option").all_inner_texts()
    details.select_option("greeter production")
    page.wait_for_selector(".msg .b-header:has-text('greeter in greeter')")

    open_channel(page, "helloworld")

    # /hello status: the status message, then its chart in the thread under it.
    send(page, "/hello status")
    page.wait_for_selector(".msg .b-header:has-text('helloworld')")
    page.wait_for_function(CHART_LOADED, timeout=40_000)
    status = page.locator(".entry", has=page.locator(".b-header:has-text('helloworld')")).last
    assert status.locator(".thread .file img").count() >= 1

    # Slack rate-limits the bot's next call (a fault rule in the Slack emulator): the bot waits
    # Retry-After and goes on, and the sidebar says it was rate-limited.
    assert page.locator("#ratelimit").is_hidden()
    slack = sandbox.part_url("Slack API").removesuffix("/api/")
    rule = json.dumps({"method": None, "status": 429, "count": 1, "retry_after": 1}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{slack}/_emulator/faults", data=rule, method="POST"),
                           timeout=10).close()

    # dana asks for a canary; the approval message carries the buttons.
    send(page, "/hello canary v2 10%")
    approve = page.locator("button.btn:has-text('Approve')").last
    approve.wait_for()
    # dana may not approve her own request; avery (the approver) does.
    page.select_option("#user-switcher", "U2")
    assert "avery" in page.inner_text("#hint")
    approve.click()
    done = page.locator(".msg", has_text=re.compile(r"Canary\s+v2\s+gets 10% of the traffic")).last
    done.wait_for(timeout=40_000)
    text = done.inner_text()
    assert "approved by" in text and "@avery" in text and "@dana" in text, text
    page.wait_for_selector("#ratelimit:has-text('rate-limited once')")

    # The chart loaded and nothing on the page threw.
    assert page.evaluate(CHART_LOADED)
    assert not page.js_errors, page.js_errors
    tools.artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(tools.artifacts / "console.png"), full_page=False)


def test_deploy_through_the_form_and_approve_from_home(launch_sandbox, page, tools) -> None:  # type: ignore[no-untyped-def]
    """dana asks for a deploy through the form (a wrong version first), avery approves it from Home."""
    sandbox = launch_sandbox()
    page.goto(sandbox.url)
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#user-switcher").input_value() == "U1"
    tools.artifacts.mkdir(exist_ok=True)
    open_channel(page, "helloworld")

    # /hello deploy with no version opens the form.
    send(page, "/hello deploy")
    form = page.locator("#modal-form")
    form.wait_for()
    assert page.inner_text("#modal-title") == "Deploy"
    recent = form.locator(".b-input[data-block-id=recent] select")
    assert recent.locator("option").all_inner_texts() == ["Choose a recent version", "v1 (running)"]
    version = form.locator(".b-input[data-block-id=version] input")
    assert version.get_attribute("placeholder")

    # A recent version chosen and another typed: the bot asks for one of them, under the typed one.
    recent.select_option("v1")
    version.fill("v2")
    page.click("#modal-submit")
    error = form.locator(".b-input[data-block-id=version] .input-error")
    error.wait_for()
    assert "not both" in error.inner_text()
    assert recent.input_value() == "v1" and version.input_value() == "v2"  # the redraw kept both
    page.screenshot(path=str(tools.artifacts / "console-modal-select.png"))

    # A full-width digit: the bot's answer is shown under the field, and the form stays open.
    recent.select_option("")
    version.fill("v\uff12")
    page.click("#modal-submit")
    error.filter(has_text="ASCII").wait_for()
    assert version.input_value() == "v\uff12"
    page.screenshot(path=str(tools.artifacts / "console-modal-error.png"))

    # The right version: the form closes and the request waits for approval in the channel.
    version.fill("v2")
    version.press("Enter")
    page.wait_for_selector("#modal", state="hidden")
    request = page.locator(".entry", has=page.locator("button.btn:has-text('Approve')")).last
    request.wait_for()
    assert re.search(r"asks for a\s+Deploy", request.inner_text()), request.inner_text()

    # avery opens Home: the request is listed there with its buttons; Approve from Home.
    page.select_option("#user-switcher", "U2")
    page.click("#tab-home")
    home = page.locator("#home-body")
    approve = home.locator("button.btn:has-text('Approve')")
    approve.wait_for(timeout=30_000)  # published on opening, and again once the request is recorded
    assert re.search(r"Deploy\s+helloworld \(staging\): v1 → v2\s+requested by @dana in #helloworld",
                     home.inner_text()), home.inner_text()
    assert page.locator("#messages").is_hidden() and page.locator("#composer").is_hidden()
    page.screenshot(path=str(tools.artifacts / "console-home.png"))
    approve.click()
    home.locator(":text('Nothing waits for your approval.')").wait_for(timeout=30_000)

    # The channel's message shows the rollout finishing (then the bake window watches the alerts).
    page.click("#tab-channel")
    done = page.locator(".msg", has_text=re.compile(r"helloworld\s+v2\s+2/2 updated · 2/2 ready")).last
    done.wait_for(timeout=60_000)
    text = done.inner_text()
    assert "approved by @avery" in text and "Rolling out" in text, text
    page.screenshot(path=str(tools.artifacts / "console-home-approved.png"))
    assert not page.js_errors, page.js_errors
