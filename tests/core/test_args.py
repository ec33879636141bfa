"""Arguments are parsed one way (bot.args), and foreign text is made safe for mrkdwn one way (bot.text)."""

from __future__ import annotations

import pytest

from bot.core import args
from bot.core.config import DEFAULT_VERSION_PATTERN, Config
from bot.core.errors import UsageError
from bot.core.text import cut, escape, foreign

USAGE = "/hello x"


@pytest.mark.parametrize("text", ["²", "٣", "１２", "12.0", "+3", " 3", "3 ", "-1", "", "0x10", "1_0"])
def test_a_count_is_ascii_digits_only(text: str) -> None:
    with pytest.raises(UsageError, match="not a count") as caught:
        args.whole_number(text, low=1, high=50, what="count", usage=USAGE)
    assert caught.value.usage == USAGE


def test_a_count_in_range() -> None:
    assert args.whole_number("50", low=1, high=50, what="count", usage=USAGE) == 50
    with pytest.raises(UsageError, match="out of range"):
        args.whole_number("51", low=1, high=50, what="count", usage=USAGE)


@pytest.mark.parametrize("text", ["１０%", "٥%", "10٪", "10％", "10", "%"])
def test_a_percentage_is_ascii_digits_and_a_percent_sign(text: str) -> None:
    with pytest.raises(UsageError, match="not a percentage"):
        args.percent(text, USAGE)


@pytest.mark.parametrize("pattern", [DEFAULT_VERSION_PATTERN, r"^v\w+$", r"^v[\d.]+$"])
@pytest.mark.parametrize("text", ["v２", "v٢", "v2.１", "vⅡ"])
def test_no_pattern_lets_a_look_alike_version_through(pattern: str, text: str) -> None:
    config = Config(slack_bot_token="xoxb-test", slack_signing_secret="secret", version_pattern=pattern)
    with pytest.raises(UsageError, match="not a version"):
        args.version(text, config, USAGE)
    assert args.version("v2", config, USAGE) == "v2"


def test_an_echoed_argument_is_escaped_and_cut() -> None:
    with pytest.raises(UsageError) as caught:
        args.percent("<!channel>" + "x" * 200, USAGE)
    message = str(caught.value)
    assert "<!channel>" not in message and "&lt;!channel&gt;" in message
    assert len(message) < 120


def test_escape_leaves_no_markup_and_is_idempotent() -> None:
    text = "a <!channel> & <https://evil.example|the runbook> &amp; &lt;b&gt;"
    once = escape(text)
    assert "<" not in once and ">" not in once
    assert escape(once) == once
    assert once.startswith("a &lt;!channel&gt; &amp; &lt;https://evil.example|the runbook&gt; &amp; ")


def test_foreign_text_is_one_line_and_cut() -> None:
    assert cut("a\n  b\tc") == "a b c"
    long = foreign("<" * 1000, 50)
    assert long.endswith("…") and long.count("&lt;") == 49


def test_a_version_is_at_most_as_long_as_an_image_tag() -> None:
    config = Config(slack_bot_token="xoxb-test", slack_signing_secret="secret", version_pattern=r"^v[a-z0-9.]+$")
    assert args.version("v" + "1" * 127, config, USAGE) == "v" + "1" * 127
    with pytest.raises(UsageError, match="at most 128 characters") as caught:
        args.version("v" + "1" * 3000, config, USAGE)
    assert len(str(caught.value)) < 300  # the long version is not echoed whole


@pytest.mark.parametrize("char", ["\x1b", "\x07", "\x08", "\x00", "\x7f", "\x85", "\u202e", "\u202a", "\u2066",
                                  "\u2069", "\u200f", "\u061c"])
def test_control_and_bidirectional_characters_never_pass(char: str) -> None:
    from bot.chat.app import invocation_from
    from bot.chat.forms import command_text
    from bot.core.text import clean

    text = f"fix{char} the login"
    assert clean(text) == "fix the login"
    assert char not in foreign(text) and char not in cut(text)
    assert char not in invocation_from({"text": f'deploy v2 "{text}"'}).text
    assert char not in command_text("deploy", {"version": "v2", "reason": text})
    config = Config(slack_bot_token="xoxb-test", slack_signing_secret="secret")
    assert args.reason([clean(text)], config, USAGE, example="x") == "fix the login"


def test_cleaning_keeps_every_script_and_ordinary_whitespace() -> None:
    from bot.core.text import clean

    assert clean("Ünïcödé ✓ 日本語 العربية\tand\nlines") == "Ünïcödé ✓ 日本語 العربية\tand\nlines"
