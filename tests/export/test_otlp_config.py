"""The OTLP and remote-write configuration: one table per variable, then the records' checks."""

import dataclasses
import logging
import math
import shutil
import ssl
import subprocess

import pytest

from dyn_metrics.errors import ConfigError, InvalidNameError, InvalidValueError
from dyn_metrics.export.otlp_config import (
    OTLPConfig,
    RemoteWriteConfig,
    metrics_url,
    parse_headers,
    parse_resource,
)

LOGGER = "dyn_metrics.export.otlp_config"
E = "OTEL_EXPORTER_OTLP_"
M = "OTEL_EXPORTER_OTLP_METRICS_"


@pytest.mark.parametrize(
    "env, protocol, expected",
    [
        # defaults per protocol
        ({}, None, "http://localhost:4317"),
        ({E + "PROTOCOL": "http/protobuf"}, None, "http://localhost:4318/v1/metrics"),
        ({}, "http/json", "http://localhost:4318/v1/metrics"),
        # the generic variable: v1/metrics after exactly one '/' for HTTP
        ({E + "ENDPOINT": "http://c:4318"}, "http/protobuf", "http://c:4318/v1/metrics"),
        ({E + "ENDPOINT": "http://c:4318/"}, "http/protobuf", "http://c:4318/v1/metrics"),
        ({E + "ENDPOINT": "http://c:4318/my"}, "http/json", "http://c:4318/my/v1/metrics"),
        ({E + "ENDPOINT": "http://c:4318/my/"}, "http/json", "http://c:4318/my/v1/metrics"),
        ({E + "ENDPOINT": "http://c:4318//"}, "http/json", "http://c:4318//v1/metrics"),
        ({E + "ENDPOINT": "https://c/b?x=1"}, "http/json", "https://c/b/v1/metrics?x=1"),
        ({E + "ENDPOINT": " http://c:4318 "}, "http/json", "http://c:4318/v1/metrics"),
        # ... and as is for gRPC
        ({E + "ENDPOINT": "http://c:4317"}, None, "http://c:4317"),
        ({E + "ENDPOINT": "https://c:4317/"}, "grpc", "https://c:4317/"),
        # the signal-specific variable: as is, an empty path becomes '/'
        ({M + "ENDPOINT": "http://c:4318/custom/path"}, "http/json", "http://c:4318/custom/path"),
        (
            {M + "ENDPOINT": "https://c.example.com/v1/metrics/"},
            "http/json",
            "https://c.example.com/v1/metrics/",
        ),
        ({M + "ENDPOINT": "http://c:4318"}, "http/protobuf", "http://c:4318/"),
        ({M + "ENDPOINT": "http://collector:4317"}, None, "http://collector:4317/"),
        # it wins over the generic one; an empty value counts as unset
        ({M + "ENDPOINT": "http://m/x", E + "ENDPOINT": "http://g"}, "http/json", "http://m/x"),
        ({M + "ENDPOINT": "", E + "ENDPOINT": "http://g"}, "http/json", "http://g/v1/metrics"),
    ],
)
def test_endpoint(env: dict, protocol: "str | None", expected: str) -> None:
    assert OTLPConfig.from_env(env, protocol=protocol).endpoint == expected


def test_a_given_endpoint_is_used_as_given_and_wins() -> None:
    env = {M + "ENDPOINT": "http://m/x", E + "ENDPOINT": "http://g"}
    config = OTLPConfig.from_env(env, endpoint="http://c:4318", protocol="http/json")
    assert config.endpoint == "http://c:4318"
    assert OTLPConfig(endpoint="http://c:1", protocol="http/json").endpoint == "http://c:1"


@pytest.mark.parametrize(
    "name, value",
    [
        (E + "ENDPOINT", "collector:4317"),  # no scheme
        (E + "ENDPOINT", "ftp://c"),
        (E + "ENDPOINT", "http://"),
        (E + "ENDPOINT", "http://c:99999"),
        (E + "ENDPOINT", "http://c:abc"),
        (E + "ENDPOINT", "http://c:0"),
        (M + "ENDPOINT", "http://c d/v1/metrics"),
        (M + "ENDPOINT", "localhost"),
    ],
)
def test_bad_endpoint_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        OTLPConfig.from_env({name: value, E + "PROTOCOL": "http/json"})
    assert str(info.value).startswith(f"{name}={value!r}: expected an http:// or https:// URL")
    off = OTLPConfig.from_env({name: value, "OTEL_METRICS_EXPORTER": "otlp"}, strict=False)
    assert off.enabled is False and off.endpoint == "http://localhost:4317"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "grpc"),
        ({E + "PROTOCOL": "grpc"}, "grpc"),
        ({E + "PROTOCOL": " GRPC "}, "grpc"),
        ({E + "PROTOCOL": "http/protobuf"}, "http/protobuf"),
        ({E + "PROTOCOL": "HTTP/JSON"}, "http/json"),
        ({E + "PROTOCOL": "grpc", M + "PROTOCOL": "http/json"}, "http/json"),
        ({E + "PROTOCOL": "http/json", M + "PROTOCOL": ""}, "http/json"),
    ],
)
def test_protocol(env: dict, expected: str) -> None:
    assert OTLPConfig.from_env(env).protocol == expected


@pytest.mark.parametrize(
    "env, name",
    [
        ({E + "PROTOCOL": "http"}, E + "PROTOCOL"),
        ({E + "PROTOCOL": "grpcs"}, E + "PROTOCOL"),
        ({M + "PROTOCOL": "http/proto", E + "PROTOCOL": "grpc"}, M + "PROTOCOL"),
    ],
)
def test_bad_protocol_names_the_variable(env: dict, name: str, caplog) -> None:
    with pytest.raises(ConfigError, match=f"^{name}=.*: expected one of grpc, http/protobuf"):
        OTLPConfig.from_env(env)
    with caplog.at_level(logging.ERROR, LOGGER):
        assert OTLPConfig.from_env(env, strict=False).enabled is False
    assert f"{name}=" in caplog.text and "OTLP export is off" in caplog.text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a=b,c=d", (("a", "b"), ("c", "d"))),
        ("x-api-key=abc%20def", (("x-api-key", "abc def"),)),
        (" Authorization = Bearer%20t , X-Y=1", (("authorization", "Bearer t"), ("x-y", "1"))),
        ("k=a=b", (("k", "a=b"),)),
        ("k=%3D%2C", (("k", "=,"),)),
        (",a=b,,", (("a", "b"),)),
        ("a=1,A=2", (("a", "2"),)),  # names are case-insensitive: the last wins
        ("k=", (("k", ""),)),
        ("k=caf%C3%A9", (("k", "café"),)),
        ("k= %20x ", (("k", " x"),)),  # raw whitespace is stripped, encoded kept
    ],
)
def test_headers(text: str, expected: tuple) -> None:
    assert parse_headers(text) == expected
    assert OTLPConfig.from_env({E + "HEADERS": text}).headers == expected


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("novalue", "item 'novalue' has no '='"),
        ("=v", "item '=v' has an empty key"),
        ("a b=c", "header name 'a b' is not an HTTP token"),
        ("k=%zz", "has a '%' not followed by two hex digits"),
        ("k=%0Aevil", "is not a str without control characters"),
        ("k=%FF", "does not decode to UTF-8"),
    ],
)
def test_bad_headers(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_headers(text)
    with pytest.raises(ConfigError) as info:
        OTLPConfig.from_env({M + "HEADERS": text})
    assert str(info.value).startswith(f"{M}HEADERS={text!r}: ") and fragment in str(info.value)


def test_metrics_headers_replace_the_generic_ones() -> None:
    env = {E + "HEADERS": "a=1,b=2", M + "HEADERS": "c=3"}
    assert OTLPConfig.from_env(env).headers == (("c", "3"),)
    assert OTLPConfig.from_env(env, headers={"D": "4"}).headers == (("d", "4"),)


@pytest.mark.parametrize(
    "env, timeout, effective, warned",
    [
        ({}, None, 30.0, False),  # Dynamo: min(interval, 30 s)
        ({"OTEL_METRIC_EXPORT_INTERVAL": "10000"}, None, 10.0, False),
        ({E + "TIMEOUT": "5000"}, 5.0, 5.0, False),
        ({E + "TIMEOUT": "250"}, 0.25, 0.25, False),
        ({E + "TIMEOUT": "0"}, math.inf, math.inf, False),  # 0 = no limit
        ({E + "TIMEOUT": "5000", M + "TIMEOUT": "7000"}, 7.0, 7.0, False),
        ({E + "TIMEOUT": "abc"}, None, 30.0, True),
        ({E + "TIMEOUT": "-5"}, None, 30.0, True),
        ({M + "TIMEOUT": "1.5"}, None, 30.0, True),
    ],
)
def test_timeout_is_milliseconds(
    env: dict, timeout, effective: float, warned: bool, caplog
) -> None:
    with caplog.at_level(logging.WARNING, LOGGER):
        config = OTLPConfig.from_env(env)
    assert config.timeout == timeout and config.export_timeout == effective
    assert ("expected integer milliseconds" in caplog.text) is warned


@pytest.mark.parametrize(
    "value, seconds, warned",
    [
        (None, 60.0, False),
        ("5000", 5.0, False),
        ("1", 0.001, False),
        ("0", 60.0, True),  # as Dynamo: 0 is the default
        ("abc", 60.0, True),
        ("-1000", 60.0, True),
        ("1e3", 60.0, True),
    ],
)
def test_export_interval(value, seconds: float, warned: bool, caplog) -> None:
    env = {} if value is None else {"OTEL_METRIC_EXPORT_INTERVAL": value}
    with caplog.at_level(logging.WARNING, LOGGER):
        assert OTLPConfig.from_env(env).interval == seconds
    assert ("OTEL_METRIC_EXPORT_INTERVAL=" in caplog.text) is warned


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "none"),
        ({E + "COMPRESSION": "gzip"}, "gzip"),
        ({E + "COMPRESSION": "GZIP"}, "gzip"),
        ({E + "COMPRESSION": "gzip", M + "COMPRESSION": "none"}, "none"),
    ],
)
def test_compression(env: dict, expected: str) -> None:
    assert OTLPConfig.from_env(env).compression == expected


def test_bad_compression() -> None:
    with pytest.raises(ConfigError, match=r"^OTEL_EXPORTER_OTLP_COMPRESSION='br': expected one of"):
        OTLPConfig.from_env({E + "COMPRESSION": "br"})


@pytest.mark.parametrize(
    "value, enabled",
    [
        (None, False),
        ("", False),
        ("otlp", True),
        (" OTLP ", True),
        ("console,otlp", True),
        ("none", False),
        ("prometheus", False),
        ("otlpx", False),
    ],
)
def test_exporter_switch(value, enabled: bool) -> None:
    env = {} if value is None else {"OTEL_METRICS_EXPORTER": value}
    assert OTLPConfig.from_env(env).enabled is enabled


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory) -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make a test CA")
    d = tmp_path_factory.mktemp("ca")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", "k.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=t"],
        cwd=d,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return str(d / "ca.pem")


def test_certificate(ca_file: str, tmp_path) -> None:
    https = {E + "ENDPOINT": "https://c:4317", M + "CERTIFICATE": ca_file}
    config = OTLPConfig.from_env(https)
    assert config.certificate == ca_file and config.secure
    ctx = config.ssl_context()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert len(ctx.get_ca_certs()) == 1  # the given CA only, not the system's
    assert OTLPConfig.from_env({M + "CERTIFICATE": ca_file}).ssl_context() is None  # http
    assert OTLPConfig(endpoint="https://c").ssl_context() is not None  # system CAs
    mine = ssl.create_default_context()
    assert OTLPConfig.from_env(https, tls_context=mine).ssl_context() is mine
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match=f"^{E}CERTIFICATE={missing!r}: expected an existing"):
        OTLPConfig.from_env({E + "CERTIFICATE": missing})
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    bad = OTLPConfig.from_env({E + "ENDPOINT": "https://c", E + "CERTIFICATE": str(junk)})
    with pytest.raises(ConfigError, match="expected a usable PEM CA file"):
        bad.ssl_context()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a=1,b=test%2Cx", (("a", "1"), ("b", "test,x"))),
        (" k = v ,", (("k", "v"),)),
        ("k=%3D", (("k", "="),)),
        ("deployment.environment=prod", (("deployment.environment", "prod"),)),
    ],
)
def test_resource_attributes(text: str, expected: tuple) -> None:
    assert parse_resource(text) == expected
    config = OTLPConfig.from_env({"OTEL_RESOURCE_ATTRIBUTES": text})
    assert config.resource_attributes == expected
    assert config.resource == (("service.name", "unknown_service"),) + expected


@pytest.mark.parametrize("text", ["a=1,broken", "a=%ZZ", "a=%FF", "=v"])
def test_bad_resource_attributes_are_discarded_whole(text: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, LOGGER):
        config = OTLPConfig.from_env({"OTEL_RESOURCE_ATTRIBUTES": text})
    assert config.resource_attributes == ()
    assert f"OTEL_RESOURCE_ATTRIBUTES={text!r} discarded" in caplog.text


@pytest.mark.parametrize(
    "env, kwargs, expected",
    [
        # (environment, from_env arguments, service.name)
        ({}, {}, "unknown_service"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=ra"}, {}, "ra"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=ra", "OTEL_SERVICE_NAME": "sn"}, {}, "sn"),
        ({"OTEL_SERVICE_NAME": "sn"}, {"resource_attributes": {"service.name": "arg"}}, "arg"),
        ({"OTEL_SERVICE_NAME": "sn"}, {"service_name": "given"}, "given"),
        ({}, {"service_name": "given", "resource_attributes": {"service.name": "x"}}, "given"),
    ],
)
def test_service_name_precedence(env: dict, kwargs: dict, expected: str) -> None:
    config = OTLPConfig.from_env(env, **kwargs)
    assert config.resource[0] == ("service.name", expected)
    assert all(k != "service.name" for k, _ in config.resource_attributes)


def test_given_resource_attributes_merge_over_the_environment() -> None:
    env = {"OTEL_RESOURCE_ATTRIBUTES": "a=env,b=env"}
    config = OTLPConfig.from_env(env, resource_attributes=[("b", "arg"), ("c", "arg")])
    assert config.resource_attributes == (("a", "env"), ("b", "arg"), ("c", "arg"))


def test_given_values_win_over_the_environment() -> None:
    env = {
        E + "PROTOCOL": "grpc",
        E + "TIMEOUT": "1000",
        E + "COMPRESSION": "none",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }
    config = OTLPConfig.from_env(
        env, protocol="http/json", timeout=2.5, compression="gzip", interval=7.0
    )
    assert (config.protocol, config.timeout, config.compression, config.interval) == (
        "http/json",
        2.5,
        "gzip",
        7.0,
    )


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (
            {"protocol": "http"},
            "protocol must be one of grpc, http/protobuf, http/json; got 'http'",
        ),
        ({"compression": "br"}, "compression must be one of none, gzip; got 'br'"),
        ({"endpoint": "nope"}, "endpoint must be an http:// or https:// URL"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"timeout": -1.0}, "got -1.0"),
        ({"timeout": float("nan")}, "got nan"),
        ({"timeout": "5"}, "got '5'"),
        ({"interval": math.inf}, "interval must be a positive finite number of seconds, got inf"),
        ({"interval": True}, "got True"),
        ({"headers": {"bad name": "x"}}, "header name 'bad name' is not an HTTP token"),
        ({"headers": {"k": "a\r\nb"}}, "is not a str without control characters"),
        ({"headers": "abc"}, "headers must be a mapping or (name, value) pairs"),
        ({"resource_attributes": {"": "x"}}, "resource attributes need str keys and values"),
        ({"resource_attributes": {"a": 1}}, "resource attributes need str keys"),
        ({"service_name": ""}, "service_name must be a non-empty str: ''"),
        ({"certificate": ""}, "certificate must be a path, got ''"),
    ],
)
def test_bad_given_values(kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        OTLPConfig(**kwargs)
    assert fragment in str(info.value)
    with pytest.raises(InvalidValueError):
        OTLPConfig.from_env({}, **kwargs)


def test_records_are_immutable_and_read_the_environment_once(monkeypatch) -> None:
    monkeypatch.setenv(E + "PROTOCOL", "http/json")
    config = OTLPConfig.from_env()
    monkeypatch.setenv(E + "PROTOCOL", "grpc")
    assert config.protocol == "http/json"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.protocol = "grpc"  # type: ignore[misc]
    assert OTLPConfig.from_env() == OTLPConfig()


def test_metrics_url_changes_nothing_else() -> None:
    assert metrics_url("http://u:p@h:1/a%20b/?q#f") == "http://u:p@h:1/a%20b/v1/metrics?q#f"


@pytest.mark.parametrize(
    "env, url, interval",
    [
        ({}, None, 15.0),
        (
            {"DYN_METRICS_REMOTE_WRITE_URL": "http://p:9090/api/v1/write"},
            "http://p:9090/api/v1/write",
            15.0,
        ),
        (
            {
                "DYN_METRICS_REMOTE_WRITE_URL": "https://m/push",
                "DYN_METRICS_REMOTE_WRITE_INTERVAL": "5",
            },
            "https://m/push",
            5.0,
        ),
        ({"DYN_METRICS_REMOTE_WRITE_INTERVAL": "0.5"}, None, 0.5),
    ],
)
def test_remote_write_env(env: dict, url, interval: float) -> None:
    config = RemoteWriteConfig.from_env(env)
    assert (config.url, config.interval, config.enabled) == (url, interval, url is not None)
    assert (config.timeout, config.queue_limit) == (30.0, 10000)


@pytest.mark.parametrize(
    "name, value",
    [
        ("DYN_METRICS_REMOTE_WRITE_URL", "prometheus:9090"),
        ("DYN_METRICS_REMOTE_WRITE_URL", "http://"),
        ("DYN_METRICS_REMOTE_WRITE_INTERVAL", "abc"),
        ("DYN_METRICS_REMOTE_WRITE_INTERVAL", "0"),
        ("DYN_METRICS_REMOTE_WRITE_INTERVAL", "-1"),
        ("DYN_METRICS_REMOTE_WRITE_INTERVAL", "inf"),
        ("DYN_METRICS_REMOTE_WRITE_INTERVAL", "nan"),
    ],
)
def test_remote_write_bad_env(name: str, value: str, caplog) -> None:
    env = {"DYN_METRICS_REMOTE_WRITE_URL": "http://p/w", name: value}
    with pytest.raises(ConfigError, match=f"^{name}={value!r}: expected "):
        RemoteWriteConfig.from_env(env)
    with caplog.at_level(logging.ERROR, LOGGER):
        assert RemoteWriteConfig.from_env(env, strict=False).enabled is False
    assert "remote write is off" in caplog.text


def test_remote_write_given_values_win_and_normalise() -> None:
    env = {"DYN_METRICS_REMOTE_WRITE_URL": "http://p/w", "DYN_METRICS_REMOTE_WRITE_INTERVAL": "5"}
    config = RemoteWriteConfig.from_env(
        env, interval=1.0, url=None, external_labels={"z": "1", "a": "2"}, headers={"X-Org": "o"}
    )
    assert (config.url, config.interval) == ("http://p/w", 1.0)
    assert config.external_labels == (("a", "2"), ("z", "1"))
    assert config.headers == (("x-org", "o"),)


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"url": "nope"}, InvalidValueError, "url must be an http:// or https:// URL"),
        ({"interval": 0}, InvalidValueError, "interval must be a positive finite number"),
        ({"timeout": math.inf}, InvalidValueError, "got inf"),
        ({"basic_auth": ("u", "p"), "bearer_token": "t"}, InvalidValueError, "not both"),
        ({"basic_auth": ("u:x", "p")}, InvalidValueError, "no ':' in user"),
        ({"basic_auth": "u:p"}, InvalidValueError, "basic_auth must be a (user, password)"),
        ({"bearer_token": ""}, InvalidValueError, "bad bearer_token"),
        ({"headers": {"Content-Type": "x"}}, InvalidValueError, "'content-type' is set by"),
        ({"headers": {"Authorization": "x"}, "bearer_token": "t"}, InvalidValueError, "set by"),
        ({"external_labels": {"__x": "1"}}, InvalidNameError, "'__x': '__' is reserved"),
        ({"external_labels": {"1a": "1"}}, InvalidNameError, "'1a' is not valid"),
        ({"external_labels": {"a": 1}}, InvalidValueError, "external label 'a': 1 is not a str"),
        ({"queue_limit": 0}, InvalidValueError, "queue_limit must be an integer >= 1, got 0"),
        ({"queue_limit": True}, InvalidValueError, "got True"),
    ],
)
def test_remote_write_bad_given_values(kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        RemoteWriteConfig(**kwargs)
    assert fragment in str(info.value)


def test_remote_write_authorization_header_without_auth_is_kept() -> None:
    config = RemoteWriteConfig("http://p/w", headers={"Authorization": "Custom x"})
    assert config.headers == (("authorization", "Custom x"),)


def test_credentials_stay_out_of_repr() -> None:
    otlp = OTLPConfig.from_env({E + "HEADERS": "api-key=s3cret"})
    rw = RemoteWriteConfig("http://p/w", headers={"X-Key": "s3cret"}, basic_auth=("u", "s3cret"))
    assert otlp.headers == (("api-key", "s3cret"),)
    assert "s3cret" not in repr(otlp) and "s3cret" not in repr(rw)
    assert "s3cret" not in repr(RemoteWriteConfig("http://p/w", bearer_token="s3cret"))
