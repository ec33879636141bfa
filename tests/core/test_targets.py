"""The target of a command: resolved once from the catalogue (bot.core.target, bot.chat.contract.take_target)."""

from __future__ import annotations

import pytest

from bot.chat.contract import take_target
from bot.core import catalogue_file
from bot.core.catalogue import Catalogue
from bot.core.config import load
from bot.core.errors import UsageError
from bot.core.policy import Policy
from bot.core.target import Targets

BASE = {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "HELLO_DEPLOYERS": "U1"}
CATALOGUE = {"services": [
    {"name": "helloworld", "channels": ["CHELLO"], "environments": [
        {"name": "staging", "namespace": "hello", "context": "staging"},
        {"name": "production", "namespace": "hello", "context": "production"}]},
    {"name": "greeter", "channels": ["CGREET"], "deployers": ["U7"], "environments": [
        {"name": "staging", "namespace": "greeter", "context": "staging"},
        {"name": "production", "namespace": "greeter", "context": "production"}]},
]}


async def _never(config):  # pragma: no cover - no test here connects
    raise AssertionError("no connection expected")


def _targets(catalogue: Catalogue | None = None) -> Targets:
    config = load(BASE)
    catalogue = catalogue or catalogue_file.parse(CATALOGUE, default_environment="staging")
    return Targets(catalogue, config, Policy(config), connect=_never, prometheus=lambda target: None)


def test_a_target_binds_its_config_and_policy_once_per_pair() -> None:
    targets = _targets()
    greeter = targets.resolve("greeter", "production")
    assert greeter is targets.resolve(None, "production", "CGREET")  # one object per pair
    assert greeter is targets.get("greeter", "production")
    assert (greeter.config.namespace, greeter.config.kube_context) == ("greeter", "production")
    assert greeter.policy.config is greeter.config and greeter.config.deployers == ("U7",)
    assert greeter.names == ("greeter", "production") and greeter.title == "greeter in production"
    assert targets.get("", "").config is targets.config  # recorded before a catalogue: the bot's own
    assert [t.names for t in targets.every()] == [("helloworld", "staging"), ("helloworld", "production"),
                                                  ("greeter", "staging"), ("greeter", "production")]


def test_without_a_catalogue_file_every_name_is_the_bot_own_target() -> None:
    config = load(BASE)
    targets = Targets(Catalogue.from_config(config), config, Policy(config), connect=_never,
                      prometheus=lambda target: None)
    own = targets.default
    assert not targets.named and own.names == ("", "") and own.title == "helloworld"
    assert own.config is config and targets.resolve(None, None) is own and targets.get("x", "y") is own
    assert take_target(["v2", '"why"'], targets, "C1") == (own, ["v2", '"why"'])


def test_take_target_peels_the_service_and_environment_it_names() -> None:
    targets = _targets()
    target, rest = take_target(["greeter", "production", "v2"], targets, "C1")
    assert target.names == ("greeter", "production") and rest == ["v2"]
    target, rest = take_target(["production", "v3"], targets, "CGREET")  # the channel's service
    assert target.names == ("greeter", "production") and rest == ["v3"]
    target, rest = take_target(["v3"], targets, "CHELLO")  # the default environment
    assert target.names == ("helloworld", "staging") and rest == ["v3"]


def test_an_unknown_word_before_an_environment_is_said_not_to_be_a_service() -> None:
    # in greeter's channel "nosuch staging v2.0.9" is a service name that the catalogue does not have,
    # not a version (#25 item 11): the answer lists the services
    with pytest.raises(UsageError, match="there is no service nosuch; services: helloworld, greeter"):
        take_target(["nosuch", "staging", "v2.0.9"], _targets(), "CGREET")
    target, rest = take_target(["v2.0.9", '"a reason"'], _targets(), "CGREET")  # a version alone is taken as one
    assert target.names == ("greeter", "staging") and rest == ["v2.0.9", '"a reason"']


def test_a_recorded_pair_without_a_service_is_the_bot_own_and_without_an_environment_the_default() -> None:
    targets = _targets()
    assert targets.get("", "production") is targets.default  # an alert group of no one service
    assert targets.get("greeter", "").names == ("greeter", "staging")
