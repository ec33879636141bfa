"""Fixtures: the Slack emulator and one bot replica without a cluster (tests/harness/bot.py)."""

from tests.asyncio_checks import no_unretrieved_task_exceptions  # noqa: F401  (autouse)
from tests.harness.bot import base_env, bot, slack  # noqa: F401  (fixtures)
