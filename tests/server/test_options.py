"""ServerOptions: the validation table, and how MetricsServer builds and overrides one."""

import dataclasses

import pytest

from dyn_metrics.errors import InvalidValueError
from dyn_metrics.server import MetricsServer, ServerOptions
from tests.server.helpers import Health, Render, request

BAD_OPTIONS = [
    # (keyword arguments, start of the InvalidValueError message)
    ({"port": -1}, "port: expected"),
    ({"port": 65536}, "port: expected"),
    ({"port": "80"}, "port: expected"),
    ({"port": True}, "port: expected"),
    ({"host": None}, "host: expected"),
    ({"health_path": "health"}, "health_path: expected"),
    ({"live_path": "/metrics"}, "live_path: expected"),
    ({"read_timeout": 0}, "read_timeout: expected"),
    ({"write_timeout": -1.0}, "write_timeout: expected"),
    ({"max_connections": 0}, "max_connections: expected"),
    ({"max_pending": 1.5}, "max_pending: expected"),
    ({"max_queued": -1}, "max_queued: expected"),
    ({"max_request_line": True}, "max_request_line: expected"),
    ({"max_header_bytes": "1"}, "max_header_bytes: expected"),
    ({"max_headers": 0}, "max_headers: expected"),
    ({"basic_auth": ("user",)}, "basic_auth: expected"),
    ({"basic_auth": ("us:er", "pw")}, "basic_auth: expected"),
    ({"basic_auth": ("user", 1)}, "basic_auth: expected"),
    ({"scrape_timeout": 0}, "scrape_timeout: expected"),
    ({"scrape_timeout": "10"}, "scrape_timeout: expected"),
    ({"users": [("u", "plain$p")]}, "users: expected a mapping"),
    ({"users": {"u:x": "plain$p"}}, "users: expected user names without ':'"),
    ({"users": {"": "plain$p"}}, "users: expected user names without ':'"),
    ({"users": {"u": "md5$abc"}}, "users\\['u'\\]: password: expected"),
    ({"users": {"u": "plain$p"}, "basic_auth": ("u", "q")}, "users: 'u' is also the basic_auth"),
    ({"keyfile": "k.pem"}, "keyfile and client_cafile need certfile"),
    ({"client_cafile": "ca.pem"}, "keyfile and client_cafile need certfile"),
    ({"certfile": "c.pem", "ssl_context": object()}, "give either certfile or ssl_context"),
]


@pytest.mark.parametrize("kwargs, prefix", BAD_OPTIONS)
def test_options_reject_bad_values(kwargs, prefix):
    with pytest.raises(InvalidValueError, match="^" + prefix):
        ServerOptions(**kwargs)


@pytest.mark.parametrize("kwargs, prefix", BAD_OPTIONS)
def test_server_constructor_rejects_bad_arguments(kwargs, prefix):
    with pytest.raises(InvalidValueError, match="^" + prefix):
        MetricsServer(Render(), Health(), **kwargs)


def test_server_constructor_rejects_non_callables():
    with pytest.raises(InvalidValueError, match="^render and health: expected callables"):
        MetricsServer("text", Health())


def test_options_defaults():
    options = ServerOptions()
    assert (options.host, options.port) == ("0.0.0.0", 0)
    assert (options.health_path, options.live_path) == ("/health", "/live")
    assert options.openmetrics is False
    assert (options.max_connections, options.max_pending, options.max_queued) == (64, 1024, 256)
    assert (options.read_timeout, options.write_timeout) == (5.0, 10.0)
    assert (options.max_request_line, options.max_header_bytes, options.max_headers) == (
        8192,
        16384,
        100,
    )
    assert options.tls_context() is None


def test_options_are_frozen_and_normalised():
    options = ServerOptions(basic_auth=["u", "p:w"], openmetrics=1)
    assert options.basic_auth == ("u", "p:w")
    assert options.openmetrics is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.port = 1


def test_options_repr_hides_the_password():
    assert "s3cret" not in repr(ServerOptions(basic_auth=("prom", "s3cret")))


def test_server_keywords_replace_given_options():
    base = ServerOptions(host="127.0.0.1", port=0, health_path="/hc")
    server = MetricsServer(Render(), Health(), base, live_path="/lc")
    assert server.options == dataclasses.replace(base, live_path="/lc")
    assert MetricsServer(Render(), Health(), base).options is base
    with pytest.raises(InvalidValueError, match="^live_path: expected"):
        MetricsServer(Render(), Health(), base, live_path="lc")


def test_server_serves_with_given_options():
    options = ServerOptions(host="127.0.0.1", health_path="/hc")
    with MetricsServer(Render(), Health(), options) as server:
        assert request(server, "/hc")[0] == 200
        assert request(server, "/health")[0] == 404


def test_options_missing_tls_file_raises_from_the_constructor(tmp_path):
    with pytest.raises(OSError):
        MetricsServer(Render(), Health(), certfile=str(tmp_path / "missing.pem"))
