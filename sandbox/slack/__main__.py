"""``python -m sandbox.slack``: run the Slack emulator on its own until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .server import SlackEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.slack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--request-url", default=None, help="the app's URL for commands and clicks")
    parser.add_argument("--signing-secret", default="emulator-signing-secret")
    parser.add_argument("--bot-token", default="xoxb-emulator-bot-token")
    parser.add_argument("--rate-limits", choices=("documented", "off"), default="documented",
                        help="enforce Slack's documented rate limits (default) or none")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    emu = SlackEmulator(
        host=args.host,
        port=args.port,
        request_url=args.request_url,
        signing_secret=args.signing_secret,
        bot_token=args.bot_token,
        rate_limits=args.rate_limits == "documented",
    )
    async with emu:
        print(emu.api_url, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
