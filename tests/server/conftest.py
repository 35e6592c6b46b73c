"""Fixtures of the server tests: a started MetricsServer on 127.0.0.1, TLS certificates."""

import shutil
import subprocess

import pytest

from dyn_metrics.server.app import MetricsServer
from tests.server.helpers import Health, Render


@pytest.fixture
def serve():
    """``serve(render=None, health=None, **kwargs)`` starts a server; all are stopped after."""
    servers = []

    def start(render=None, health=None, **kwargs):
        kwargs.setdefault("host", "127.0.0.1")
        server = MetricsServer(render or Render(), health or Health(), **kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make the TLS test certificates")
    d = tmp_path_factory.mktemp("certs")

    def run(*args):
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True, timeout=60)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    # Key usages spelled out: Python 3.13's default strict X.509 checks refuse
    # a CA certificate without them.
    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=dyn_metrics test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    for serial, (name, usage, extra) in enumerate(
        [
            ("server", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
            ("client", "clientAuth", ""),
        ],
        start=2,
    ):
        (d / f"{name}.ext").write_text(
            f"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            f"extendedKeyUsage={usage}\n{extra}"
        )
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            str(serial),
            "-days",
            "2",
            "-out",
            f"{name}.pem",
            "-extfile",
            f"{name}.ext",
        )
    return {
        n: str(d / n) for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
    }
