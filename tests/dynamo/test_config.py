"""SystemConfig.from_env: the DYN_* variables of the system status server, as tables."""

import logging

import pytest

from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.errors import ConfigError, MetricsError

DEFAULT = SystemConfig()

# (environment, expected fields that differ from the defaults)
GOOD = [
    # nothing set: server off
    ({}, {}),
    # port
    ({"DYN_SYSTEM_PORT": "-1"}, {}),
    ({"DYN_SYSTEM_PORT": "-2"}, {}),  # any negative value is off, as in Dynamo
    ({"DYN_SYSTEM_PORT": ""}, {}),  # empty counts as unset
    ({"DYN_SYSTEM_PORT": "0"}, {"port": 0}),
    ({"DYN_SYSTEM_PORT": "9527"}, {"port": 9527}),
    ({"DYN_SYSTEM_PORT": "1"}, {"port": 1}),
    ({"DYN_SYSTEM_PORT": "32768"}, {"port": 32768}),  # Dynamo's i16 overflow is not copied
    ({"DYN_SYSTEM_PORT": "65535"}, {"port": 65535}),
    # host
    ({"DYN_SYSTEM_HOST": "127.0.0.1"}, {"host": "127.0.0.1"}),
    ({"DYN_SYSTEM_HOST": "::"}, {"host": "::"}),
    ({"DYN_SYSTEM_HOST": "[::1]"}, {"host": "::1"}),
    ({"DYN_SYSTEM_HOST": ""}, {}),
    # paths
    ({"DYN_SYSTEM_HEALTH_PATH": "/custom/health"}, {"health_path": "/custom/health"}),
    ({"DYN_SYSTEM_LIVE_PATH": "/custom/live"}, {"live_path": "/custom/live"}),
    ({"DYN_SYSTEM_HEALTH_PATH": "/"}, {"health_path": "/"}),
    # starting status
    ({"DYN_SYSTEM_STARTING_HEALTH_STATUS": "ready"}, {"starting_health_status": "ready"}),
    ({"DYN_SYSTEM_STARTING_HEALTH_STATUS": "notready"}, {}),
    # endpoint list (deprecated, honoured)
    (
        {"DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS": '["generate"]'},
        {"use_endpoint_health_status": ("generate",)},
    ),
    (
        {"DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS": '["a", "b"]'},
        {"use_endpoint_health_status": ("a", "b")},
    ),
    ({"DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS": "[]"}, {}),
    # deprecated, ignored for enablement
    ({"DYN_SYSTEM_ENABLED": "true"}, {}),
    ({"DYN_SYSTEM_ENABLED": "whatever"}, {}),
    # booleans
    *[
        ({"DYN_SYSTEM_OPENMETRICS": w}, {"openmetrics": True})
        for w in ("1", "true", "TRUE", "On", "yes", "YES")
    ],
    *[({"DYN_SYSTEM_OPENMETRICS": w}, {}) for w in ("0", "false", "False", "off", "NO", "")],
    ({"DYN_HEALTH_CHECK_ENABLED": "true"}, {"health_check_enabled": True}),
    ({"DYN_HEALTH_CHECK_ENABLED": "off"}, {}),
    # everything at once
    (
        {
            "DYN_SYSTEM_PORT": "8081",
            "DYN_SYSTEM_HOST": "127.0.0.1",
            "DYN_SYSTEM_STARTING_HEALTH_STATUS": "ready",
            "DYN_SYSTEM_OPENMETRICS": "1",
        },
        {"port": 8081, "host": "127.0.0.1", "starting_health_status": "ready", "openmetrics": True},
    ),
]

# (variable, bad value, expected-part of the message)
BAD = [
    ("DYN_SYSTEM_PORT", "abc", "an integer in 0..65535"),
    ("DYN_SYSTEM_PORT", "70000", "an integer in 0..65535"),
    ("DYN_SYSTEM_PORT", "65536", "an integer in 0..65535"),
    ("DYN_SYSTEM_PORT", "1.5", "an integer in 0..65535"),
    ("DYN_SYSTEM_PORT", "+80", "an integer in 0..65535"),
    ("DYN_SYSTEM_PORT", " 8081", "an integer in 0..65535"),
    ("DYN_SYSTEM_PORT", "\u0663", "an integer in 0..65535"),  # a non-ASCII digit
    ("DYN_SYSTEM_HOST", " host", "a host name or IP address"),
    ("DYN_SYSTEM_HOST", "[]", "a host name or IP address"),
    ("DYN_SYSTEM_HEALTH_PATH", "health", "a path starting with '/'"),
    ("DYN_SYSTEM_HEALTH_PATH", "/a b", "a path starting with '/'"),
    ("DYN_SYSTEM_LIVE_PATH", "/live?x=1", "a path starting with '/'"),
    ("DYN_SYSTEM_LIVE_PATH", "/metrics", "a path other than '/metrics'"),
    ("DYN_SYSTEM_STARTING_HEALTH_STATUS", "READY", "'ready' or 'notready'"),
    ("DYN_SYSTEM_STARTING_HEALTH_STATUS", "Ready", "'ready' or 'notready'"),
    ("DYN_SYSTEM_STARTING_HEALTH_STATUS", "healthy", "'ready' or 'notready'"),
    ("DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS", "generate", "a JSON array of strings"),
    ("DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS", '["a", 1]', "a JSON array of strings"),
    ("DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS", '{"a": 1}', "a JSON array of strings"),
    ("DYN_SYSTEM_OPENMETRICS", "maybe", "one of 1/true/on/yes or 0/false/off/no"),
    ("DYN_SYSTEM_OPENMETRICS", "2", "one of 1/true/on/yes or 0/false/off/no"),
    ("DYN_HEALTH_CHECK_ENABLED", "y", "one of 1/true/on/yes or 0/false/off/no"),
]


def _errors(caplog):
    return [
        r for r in caplog.records if r.name.startswith("dyn_metrics") and r.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize("env, fields", GOOD)
def test_config_from_env_good_values(env, fields, caplog):
    config = SystemConfig.from_env(env, strict=True)
    expected = {**DEFAULT.as_dict(), **fields}
    assert config.as_dict() == expected
    assert config.enabled == (expected["port"] is not None)
    assert not _errors(caplog)


@pytest.mark.parametrize("var, value, expected", BAD)
def test_config_bad_value_logs_one_error_and_falls_back(var, value, expected, caplog):
    # The other settings are good, yet the whole config falls back (server off), as Dynamo does.
    env = {"DYN_SYSTEM_PORT": "8081", "DYN_SYSTEM_HOST": "127.0.0.1", var: value}
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        config = SystemConfig.from_env(env)
    assert config == DEFAULT
    assert not config.enabled
    errors = _errors(caplog)
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert message.startswith(f"{var}={value!r}: expected ")
    assert expected in message


@pytest.mark.parametrize("var, value, expected", BAD)
def test_config_bad_value_strict_raises(var, value, expected, caplog):
    with pytest.raises(ConfigError) as info:
        SystemConfig.from_env({var: value}, strict=True)
    assert str(info.value).startswith(f"{var}={value!r}: expected ")
    assert expected in str(info.value)
    assert isinstance(info.value, (MetricsError, ValueError))
    assert not _errors(caplog)


def test_config_strict_message_is_the_logged_message(caplog):
    env = {"DYN_SYSTEM_PORT": "abc"}
    with pytest.raises(ConfigError) as info:
        SystemConfig.from_env(env, strict=True)
    SystemConfig.from_env(env)
    assert str(info.value) in _errors(caplog)[0].getMessage()


def test_config_several_bad_values_log_one_error(caplog):
    env = {"DYN_SYSTEM_PORT": "abc", "DYN_SYSTEM_STARTING_HEALTH_STATUS": "READY"}
    assert SystemConfig.from_env(env) == DEFAULT
    assert len(_errors(caplog)) == 1


@pytest.mark.parametrize("var", ["DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS", "DYN_SYSTEM_ENABLED"])
def test_config_deprecated_variable_logs_warning(var, caplog):
    value = '["generate"]' if var.endswith("STATUS") else "true"
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        SystemConfig.from_env({var: value})
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert var in warnings[0].getMessage()
    assert "deprecated" in warnings[0].getMessage()


def test_config_unset_deprecated_variables_log_nothing(caplog):
    with caplog.at_level(logging.DEBUG, logger="dyn_metrics"):
        SystemConfig.from_env({"DYN_SYSTEM_ENABLED": "", "DYN_SYSTEM_PORT": "0"})
    assert caplog.records == []


def test_config_reads_os_environ_by_default(monkeypatch):
    for name in (
        "DYN_SYSTEM_HOST",
        "DYN_SYSTEM_OPENMETRICS",
        "DYN_SYSTEM_HEALTH_PATH",
        "DYN_SYSTEM_LIVE_PATH",
        "DYN_SYSTEM_STARTING_HEALTH_STATUS",
        "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS",
        "DYN_SYSTEM_ENABLED",
        "DYN_HEALTH_CHECK_ENABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DYN_SYSTEM_PORT", "0")
    assert SystemConfig.from_env() == SystemConfig(port=0)
    monkeypatch.delenv("DYN_SYSTEM_PORT")
    assert not SystemConfig.from_env().enabled


# direct construction validates too
@pytest.mark.parametrize(
    "kwargs, prefix",
    [
        ({"port": 70000}, "port: expected"),
        ({"port": -1}, "port: expected"),
        ({"port": True}, "port: expected"),
        ({"port": "80"}, "port: expected"),
        ({"host": ""}, "host: expected"),
        ({"health_path": "health"}, "health_path: expected"),
        ({"live_path": "/metrics"}, "live_path: expected"),
        ({"starting_health_status": "READY"}, "starting_health_status: expected"),
        ({"use_endpoint_health_status": "generate"}, "use_endpoint_health_status: expected"),
    ],
)
def test_config_constructor_rejects_bad_fields(kwargs, prefix):
    with pytest.raises(ConfigError, match="^" + prefix):
        SystemConfig(**kwargs)


def test_config_is_frozen_and_normalises_endpoint_list():
    config = SystemConfig(port=0, use_endpoint_health_status=["a"])
    assert config.use_endpoint_health_status == ("a",)
    assert config.enabled
    with pytest.raises(AttributeError):
        config.port = 1
