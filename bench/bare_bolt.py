"""A bare Bolt app on Sanic with default settings whose /hello handler only acks (the baseline for bench/ack)."""

from __future__ import annotations

import os
import sys

from sanic import Request, Sanic
from slack_bolt.adapter.sanic import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def main() -> None:
    port = int(sys.argv[1])
    bolt = AsyncApp(
        client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        process_before_response=len(sys.argv) > 2 and sys.argv[2] == "process-before-response",
    )

    @bolt.command("/hello")
    async def hello(ack):  # type: ignore[no-untyped-def]
        await ack()

    app = Sanic("bare_bolt", configure_logging=False)
    app.config.TOUCHUP = True
    handler = AsyncSlackRequestHandler(bolt)

    @app.post("/slack/events")
    async def events(request: Request):  # type: ignore[no-untyped-def]
        return await handler.handle(request)

    app.run(host="127.0.0.1", port=port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
