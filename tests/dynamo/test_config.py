"""SystemConfig.from_env: the DYN_* variables of the system status server, as tables."""

import logging

import pytest

from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.errors import ConfigError, MetricsError
from tests.server.conftest import certs  # noqa: F401  (the session fixture)

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
    ({"DYN_SYSTEM_AUTH_EXEMPT_PROBES": "1"}, {"auth_exempt_probes": True}),
    ({"DYN_SYSTEM_AUTH_EXEMPT_PROBES": "no"}, {}),
    ({"DYN_SYSTEM_SELF_METRICS": "true"}, {"self_metrics": True}),
    ({"DYN_SYSTEM_SELF_METRICS": "0"}, {}),
    # scrape timeout
    ({"DYN_SYSTEM_SCRAPE_TIMEOUT": "2.5"}, {"scrape_timeout": 2.5}),
    ({"DYN_SYSTEM_SCRAPE_TIMEOUT": "30"}, {"scrape_timeout": 30.0}),
    ({"DYN_SYSTEM_SCRAPE_TIMEOUT": "1e-3"}, {"scrape_timeout": 0.001}),
    ({"DYN_SYSTEM_SCRAPE_TIMEOUT": ""}, {}),
    ({"DYN_METRICS_MAX_CHILDREN": "1000"}, {"max_children": 1000}),
    ({"DYN_METRICS_MAX_CHILDREN": "0"}, {"max_children": 0}),
    ({"DYN_METRICS_MAX_CHILDREN": ""}, {}),
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
    ("DYN_SYSTEM_AUTH_EXEMPT_PROBES", "probes", "one of 1/true/on/yes or 0/false/off/no"),
    ("DYN_SYSTEM_SELF_METRICS", "2", "one of 1/true/on/yes or 0/false/off/no"),
    ("DYN_SYSTEM_SCRAPE_TIMEOUT", "0", "a positive finite number of seconds"),
    ("DYN_METRICS_MAX_CHILDREN", "-1", "an integer >= 0 (children per vec)"),
    ("DYN_METRICS_MAX_CHILDREN", "1e3", "an integer >= 0 (children per vec)"),
    ("DYN_METRICS_MAX_CHILDREN", "١", "an integer >= 0 (children per vec)"),
    ("DYN_SYSTEM_SCRAPE_TIMEOUT", "-1", "a positive finite number of seconds"),
    ("DYN_SYSTEM_SCRAPE_TIMEOUT", "inf", "a positive finite number of seconds"),
    ("DYN_SYSTEM_SCRAPE_TIMEOUT", "nan", "a positive finite number of seconds"),
    ("DYN_SYSTEM_SCRAPE_TIMEOUT", "10s", "a positive finite number of seconds"),
    ("DYN_SYSTEM_TLS_KEY_FILE", "k.pem", "to be set together with DYN_SYSTEM_TLS_CERT_FILE"),
    ("DYN_SYSTEM_TLS_CLIENT_CA_FILE", "ca.pem", "to be set together with DYN_SYSTEM_TLS_CERT"),
    ("DYN_SYSTEM_TLS_CERT_FILE", "/nonexistent/c.pem", "a usable PEM certificate chain"),
    ("DYN_SYSTEM_BASIC_AUTH_FILE", "/nonexistent/users", "a readable UTF-8 file"),
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
        ({"scrape_timeout": 0}, "scrape_timeout: expected"),
        ({"scrape_timeout": float("inf")}, "scrape_timeout: expected"),
        ({"scrape_timeout": "1"}, "scrape_timeout: expected"),
        ({"tls_cert_file": ""}, "tls_cert_file: expected"),
        ({"tls_key_file": "k.pem"}, "tls_key_file and tls_client_ca_file: expected"),
        ({"users": [("u", "plain$p"), ("u", "plain$q")]}, "users: expected distinct"),
        ({"users": [("u:x", "plain$p")]}, "users: expected"),
        ({"users": [("u", "md5$x")]}, "users\\['u'\\]: password: expected"),
        ({"users": "u:plain$p"}, "users: expected"),
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


# -- files: TLS and Basic auth ---------------------------------------------------------------


def test_config_tls_files(certs):  # noqa: F811
    env = {
        "DYN_SYSTEM_TLS_CERT_FILE": certs["server.pem"],
        "DYN_SYSTEM_TLS_KEY_FILE": certs["server.key"],
        "DYN_SYSTEM_TLS_CLIENT_CA_FILE": certs["ca.pem"],
    }
    config = SystemConfig.from_env(env, strict=True)
    assert config.tls_cert_file == certs["server.pem"]
    assert config.tls_key_file == certs["server.key"]
    assert config.tls_client_ca_file == certs["ca.pem"]


TLS_BAD = [
    # (variables as certificate names, the variable the message names first)
    ({"DYN_SYSTEM_TLS_CERT_FILE": "ca.key"}, "DYN_SYSTEM_TLS_CERT_FILE"),  # a key, no certificate
    ({"DYN_SYSTEM_TLS_CERT_FILE": "server.pem"}, "DYN_SYSTEM_TLS_CERT_FILE"),  # no key
    (
        {"DYN_SYSTEM_TLS_CERT_FILE": "server.pem", "DYN_SYSTEM_TLS_KEY_FILE": "missing.key"},
        "DYN_SYSTEM_TLS_KEY_FILE",
    ),
    (
        {"DYN_SYSTEM_TLS_CERT_FILE": "server.pem", "DYN_SYSTEM_TLS_KEY_FILE": "client.key"},
        "DYN_SYSTEM_TLS_CERT_FILE",  # the key does not match
    ),
    (
        {
            "DYN_SYSTEM_TLS_CERT_FILE": "server.pem",
            "DYN_SYSTEM_TLS_KEY_FILE": "server.key",
            "DYN_SYSTEM_TLS_CLIENT_CA_FILE": "server.key",
        },
        "DYN_SYSTEM_TLS_CLIENT_CA_FILE",
    ),
]


@pytest.mark.parametrize("env, var", TLS_BAD)
def test_config_bad_tls_files(env, var, certs, caplog):  # noqa: F811
    d = certs["ca.pem"].rsplit("/", 1)[0]
    env = {k: f"{d}/{v}" for k, v in env.items()}
    with pytest.raises(ConfigError, match="^" + var + "="):
        SystemConfig.from_env(env, strict=True)
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        assert SystemConfig.from_env({**env, "DYN_SYSTEM_PORT": "0"}) == DEFAULT
    assert [e.getMessage().split("=")[0] for e in _errors(caplog)] == [var]


def _pbkdf2(password):
    import hashlib

    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), b"salt", 1000)
    return f"pbkdf2_sha256$1000$salt${digest.hex()}"


def test_config_basic_auth_file(tmp_path):
    path = tmp_path / "users"
    path.write_text(f"# scrapers\nalice:{_pbkdf2('a')}\n\n  bob:plain$b:c  \n")
    config = SystemConfig.from_env({"DYN_SYSTEM_BASIC_AUTH_FILE": str(path)}, strict=True)
    assert config.users == (("alice", _pbkdf2("a")), ("bob", "plain$b:c"))
    assert "plain$b" not in repr(config) and "users=('alice', 'bob')" in repr(config)


AUTH_FILES_BAD = [
    # (file text, expected part of the message); the message never shows a password
    ("", "at least one user:HASH line"),
    ("# only a comment\n", "at least one user:HASH line"),
    ("alice\n", "line 1 of the form user:HASH"),
    (":plain$x\n", "line 1 of the form user:HASH"),
    ("alice:plain$a\nalice:plain$b\n", "user 'alice' once only (again on line 2)"),
    ("alice:plain$a\nbob:hunter2\n", "line 2 with a HASH of 'pbkdf2_sha256"),
    ("alice:pbkdf2_sha256$x$salt$00\n", "line 1 with a HASH of"),
]


@pytest.mark.parametrize("text, expected", AUTH_FILES_BAD)
def test_config_bad_basic_auth_file(text, expected, tmp_path, caplog):
    path = tmp_path / "users"
    path.write_text(text)
    env = {"DYN_SYSTEM_BASIC_AUTH_FILE": str(path), "DYN_SYSTEM_PORT": "0"}
    with pytest.raises(ConfigError) as info:
        SystemConfig.from_env(env, strict=True)
    message = str(info.value)
    assert message.startswith(f"DYN_SYSTEM_BASIC_AUTH_FILE={str(path)!r}: expected ")
    assert expected in message
    assert "hunter2" not in message
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        assert SystemConfig.from_env(env) == DEFAULT
    assert len(_errors(caplog)) == 1


def test_config_basic_auth_file_not_utf8(tmp_path):
    path = tmp_path / "users"
    path.write_bytes(b"alice:plain$\xff\n")
    with pytest.raises(ConfigError, match="a readable UTF-8 file"):
        SystemConfig.from_env({"DYN_SYSTEM_BASIC_AUTH_FILE": str(path)}, strict=True)
