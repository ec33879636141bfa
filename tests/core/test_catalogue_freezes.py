"""The catalogue's freeze windows (a service's ``freezes:``): what is read, and what is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.core import catalogue_file
from bot.core.catalogue import Catalogue, FreezeWindow
from bot.core.config import ConfigError


def catalogue(freezes: Any, name: str = "payments") -> Catalogue:
    return catalogue_file.parse({"services": [{
        "name": name, "freezes": freezes,
        "environments": [{"name": "staging", "namespace": "pay"}, {"name": "production", "namespace": "pay"}]}]},
        source="services.yaml")


def test_windows_are_read_with_their_defaults() -> None:
    service = catalogue([
        {"cron": "0  18 * * FRI", "duration": "2d16h", "timezone": "Europe/Paris", "reason": "weekend",
         "environments": ["production"]},
        {"cron": "0 12 * * *", "duration": "30m"},
    ]).service("payments")
    assert service.freezes == (
        FreezeWindow(cron="0 18 * * FRI", duration=timedelta(hours=64), timezone="Europe/Paris", reason="weekend",
                     environments=("production",)),
        FreezeWindow(cron="0 12 * * *", duration=timedelta(minutes=30), timezone="", reason="freeze window",
                     environments=()),
    )
    assert catalogue(None).service("payments").freezes == ()


@pytest.mark.parametrize(("freezes", "message"), [
    ({"cron": "0 18 * * FRI"}, "freezes: must be a list of windows"),
    (["weekend"], "freezes[0]: must be a mapping"),
    ([{"cron": "0 18 * * FRI", "duration": "1h", "days": 2}], "freezes[0].days: unknown field"),
    ([{"duration": "1h"}], "freezes[0].cron: required"),
    ([{"cron": "0 18 * *", "duration": "1h"}], "freezes[0].cron: '0 18 * *' is not a cron expression"),
    ([{"cron": "0 25 * * *", "duration": "1h"}], "freezes[0].cron: '0 25 * * *' is not a cron expression"),
    ([{"cron": "0 0 30 2 *", "duration": "1h"}], "freezes[0].cron: '0 0 30 2 *' never fires"),
    ([{"cron": "0 18 * * FRI"}], "freezes[0].duration: required: a duration like 64h"),
    ([{"cron": "0 18 * * FRI", "duration": 64}], "freezes[0].duration: required: a duration like 64h"),
    ([{"cron": "0 18 * * FRI", "duration": "0h"}], "freezes[0].duration: must be more than 0 and at most 31 days"),
    ([{"cron": "0 18 * * FRI", "duration": "1h", "timezone": "Mars/Olympus"}],
     "freezes[0].timezone: unknown time zone 'Mars/Olympus'"),
    ([{"cron": "0 18 * * FRI", "duration": "1h", "reason": ""}], "freezes[0].reason: must be a non-empty string"),
    ([{"cron": "0 18 * * FRI", "duration": "1h", "environments": "production"}],
     "freezes[0].environments: must be a list of the service's environment names"),
    ([{"cron": "0 9 * * *", "duration": "1h"}, {"cron": "0 18 * * FRI", "duration": "1h", "environments": ["prod"]}],
     "freezes[1].environments[0]: 'prod' is not one of the service's environments (staging, production)"),
])
def test_a_bad_window_names_the_file_the_service_and_the_field(freezes: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        catalogue(freezes)
    assert str(caught.value).startswith("services.yaml: service 'payments', ")
    assert message in str(caught.value)


def test_all_is_not_a_service_name() -> None:
    with pytest.raises(ConfigError, match=r"services\.yaml: services\[0\]\.name: 'all' is reserved"):
        catalogue(None, name="all")
