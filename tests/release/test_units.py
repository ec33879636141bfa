"""Pure parts: argument parsing and reading a Deployment's rollout status."""

from __future__ import annotations

import pytest

from bot.core.config import Config
from bot.core.errors import UsageError
from bot.release.rollout import status_of
from commands import canary, cert, deploy, history

CONFIG = Config(slack_bot_token="", slack_signing_secret="")


def test_canary_arguments() -> None:
    assert canary.parse(["v2"], CONFIG) == canary.Request(kind="set", version="v2", analysed=True)
    manual = Config(slack_bot_token="", slack_signing_secret="", canary_analysis=False)
    assert canary.parse(["v2"], manual) == canary.Request(kind="set", version="v2", percent=10)
    assert canary.parse(["v2.1-rc1", "0%"], CONFIG) == canary.Request(kind="set", version="v2.1-rc1", percent=0)
    assert canary.parse(["100%"], CONFIG) == canary.Request(kind="shift", percent=100)
    assert canary.parse(["promote"], CONFIG).kind == "promote"
    for bad in (["v2", "-1%"], ["2"], ["v2", "10%", "x", "y"], ["v2", "10%", "25%"], ["1000%"]):
        with pytest.raises(UsageError) as info:
            canary.parse(bad, CONFIG)
        assert info.value.usage == canary.USAGE


def test_other_arguments() -> None:
    assert deploy.parse(["v10.0.1"], CONFIG).mutating
    assert not cert.parse([], CONFIG).mutating and cert.parse(["renew"], CONFIG).mutating
    assert history.parse(["5"], CONFIG).count == 5
    with pytest.raises(UsageError):
        history.parse(["0"], CONFIG)


def _deploy(generation: int, observed: int, **status: object) -> dict:
    return {"metadata": {"name": "helloworld", "generation": generation},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "helloworld",
                                                                          "image": "helloworld:v2"}]}}},
            "status": {"observedGeneration": observed, **status}}


def test_rollout_status_reads_like_kubectl() -> None:
    done = status_of(_deploy(2, 2, replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=3))
    assert done.done and done.version == "v2"
    old_left = status_of(_deploy(2, 2, replicas=4, updatedReplicas=3, readyReplicas=4, availableReplicas=4))
    assert not old_left.done
    unseen = status_of(_deploy(3, 2, replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=3,
                               conditions=[{"type": "Progressing", "status": "False",
                                            "reason": "ProgressDeadlineExceeded"}]))
    assert not unseen.done and not unseen.stuck  # a condition about an older spec
    stuck = status_of(_deploy(3, 3, replicas=4, updatedReplicas=1, readyReplicas=3, availableReplicas=3,
                              conditions=[{"type": "Progressing", "status": "False",
                                           "reason": "ProgressDeadlineExceeded", "message": "timed out"}]))
    assert stuck.stuck and stuck.stuck_reason == "ProgressDeadlineExceeded"
