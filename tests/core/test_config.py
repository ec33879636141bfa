"""Configuration: one frozen dataclass from env; bad values name the variable."""

from __future__ import annotations

import dataclasses

import pytest

from bot.core.config import ConfigError, load

BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}


def test_defaults_need_only_slack_token_and_secret() -> None:
    config = load(BASE)
    assert config.namespace == "hello"
    assert config.prometheus_url == "http://127.0.0.1:9090"
    assert config.deployers == ()
    assert config.self_approval is False
    assert config.approval_ttl_seconds == 1800
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.namespace = "x"  # type: ignore[misc]


@pytest.mark.parametrize("missing", ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"])
def test_missing_required_value_names_it(missing: str) -> None:
    env = dict(BASE)
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        load(env)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("HELLO_DEPLOYERS", "dana"),
        ("HELLO_OPS_CHANNELS", "U123"),
        ("HELLO_SELF_APPROVAL", "maybe"),
        ("HELLO_APPROVAL_TTL", "soon"),
        ("PROMETHEUS_URL", "localhost:9090"),
        ("HELLO_CANARY_PERCENT", "101"),
        ("HELLO_VERSION_PATTERN", "(("),
        ("HELLO_SCHEDULES", "61 * * * *|C1"),
        ("HELLO_TIMEZONE", "Mars/Olympus"),
        ("HELLO_METRICS_PRESET", "statsd"),
        ("SLACK_APP_TOKEN", "xoxb-wrong-kind"),
    ],
)
def test_malformed_value_names_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        load({**BASE, var: value})


def test_lists_and_flags_parse() -> None:
    config = load({**BASE, "HELLO_DEPLOYERS": "U1, S9", "HELLO_OPS_CHANNELS": "C1,G2",
                   "HELLO_SELF_APPROVAL": "yes", "HELLO_SCHEDULES": "*/15 * * * *|C1|6h; 0 9 * * 1|C2",
                   "HELLO_METRICS_PRESET": "envoy", "SLACK_API_URL": "http://127.0.0.1:1/api"})
    assert config.deployers == ("U1", "S9")
    assert config.ops_channels == ("C1", "G2")
    assert config.self_approval is True
    assert [s.range for s in config.schedules] == ["6h", "1h"]
    assert config.metrics.requests == "envoy_cluster_upstream_rq_total"
    assert config.slack_api_url.endswith("/api/")


def test_yaml_file_supplies_defaults_and_env_wins(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hello.yaml"
    path.write_text("HELLO_NAMESPACE: staging\nHELLO_DEPLOYERS: [U7, U8]\nHELLO_SELF_APPROVAL: true\n")
    config = load({**BASE, "HELLO_CONFIG": str(path), "HELLO_NAMESPACE": "prod"})
    assert config.namespace == "prod"
    assert config.deployers == ("U7", "U8")
    assert config.self_approval is True
    path.write_text("NOT_A_SETTING: 1\n")
    with pytest.raises(ConfigError, match="NOT_A_SETTING"):
        load({**BASE, "HELLO_CONFIG": str(path)})


def test_secrets_are_not_in_repr() -> None:
    config = load({**BASE, "SLACK_BOT_TOKEN": "xoxb-very-secret"})
    assert "very-secret" not in repr(config)


@pytest.mark.parametrize("text", ["", "help", "  canary   v2  10% ", "deploy v2.1.0-rc1", "status\t1h",
                                  'schedule add "*/15 * * * *" 1h', "schedule add '0 9 * * 1'",
                                  "schedule add “0 9 * * 1” 6h", 'say "a b\\" c"'])
def test_split_reads_arguments_like_a_shell(text: str) -> None:
    import shlex

    from commands import split

    expected = shlex.split(text.replace("“", '"').replace("”", '"'))
    assert split(text) == expected


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        # a colon inside a plain value, an unclosed quote, a bad indent, a tab: each line holds a secret
        ("HELLO_NAMESPACE: staging\nSLACK_BOT_TOKEN: xoxb-zz-secret-zz: more\n", 2, "SLACK_BOT_TOKEN"),
        ('HELLO_NAMESPACE: staging\nSLACK_SIGNING_SECRET: "zz-secret-zz\n', 2, "SLACK_SIGNING_SECRET"),
        ("SLACK_SIGNING_SECRET: zz-secret-zz\n  - HELLO_NAMESPACE: x\n", 2, "SLACK_SIGNING_SECRET"),
        ("\tzz-secret-zz\n", 1, None),
    ],
)
def test_a_yaml_error_names_file_line_and_key_never_the_value(tmp_path, text: str, line: int,  # type: ignore[no-untyped-def]
                                                              key: str | None) -> None:
    path = tmp_path / "hello.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load({**BASE, "HELLO_CONFIG": str(path)})
    message = str(caught.value)
    assert "zz-secret-zz" not in message and "xoxb" not in message
    assert str(path) in message and f"line {line}" in message
    if key is not None:
        assert key in message
    assert "\n" not in message


def test_the_bots_own_cluster_is_in_cluster_or_a_context_never_both() -> None:
    assert load({**BASE, "HELLO_KUBE_IN_CLUSTER": "true"}).kube_in_cluster
    assert not load(BASE).kube_in_cluster
    with pytest.raises(ConfigError, match="HELLO_KUBE_IN_CLUSTER and HELLO_KUBE_CONTEXT"):
        load({**BASE, "HELLO_KUBE_IN_CLUSTER": "true", "HELLO_KUBE_CONTEXT": "prod"})
    with pytest.raises(ConfigError, match="HELLO_KUBE_IN_CLUSTER must be true or false"):
        load({**BASE, "HELLO_KUBE_IN_CLUSTER": "sometimes"})
