"""Basic auth: hashed passwords (pbkdf2_sha256, scrypt, plain), several users, probe exemption."""

import base64
import hashlib

import pytest

from dyn_metrics.errors import InvalidValueError
from dyn_metrics.server import auth
from dyn_metrics.server.auth import Credentials, parse_password, verify
from tests.server.helpers import request


def pbkdf2(password, salt="salt", iterations=1000):
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${digest.hex()}"


def scrypt(password, salt="salt", n=16, r=1, p=1):
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt}${digest.hex()}"


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# (hashed password, the right password)
GOOD = [
    (pbkdf2("s3cret"), "s3cret"),
    (pbkdf2("pässwörd", salt="NaCl", iterations=3), "pässwörd"),
    (scrypt("s3cret"), "s3cret"),
    (scrypt("x", n=2, r=2, p=2), "x"),
    ("plain$s3cret", "s3cret"),
    ("plain$a$b:c", "a$b:c"),  # everything after plain$ is the password
]


@pytest.mark.parametrize("spec, password", GOOD)
def test_verify_accepts_the_password_only(spec, password):
    parsed = parse_password(spec)
    assert verify(parsed, password.encode())
    assert not verify(parsed, (password + "x").encode())
    assert not verify(parsed, b"")


BAD = [
    # (spec, what the message shows)
    ("", "''"),
    ("plain$", "'plain$'"),
    ("md5$abc", "'md5$abc'"),
    ("pbkdf2_sha256$0$salt$00", "pbkdf2_sha256$0"),
    ("pbkdf2_sha256$x$salt$00", "pbkdf2_sha256$x"),
    ("pbkdf2_sha256$10$$00", "pbkdf2_sha256$10$$"),
    ("pbkdf2_sha256$10$salt$zz", "salt$zz"),
    ("pbkdf2_sha256$10$salt$", "salt$'"),
    ("pbkdf2_sha256$10$salt", "salt'"),
    ("scrypt$15$1$1$salt$00", "scrypt$15"),  # N not a power of two
    ("scrypt$1$1$1$salt$00", "scrypt$1$"),
    ("scrypt$16$0$1$salt$00", "scrypt$16$0"),
    ("scrypt$16$1$1$salt", "salt'"),
    ("scrypt$16$1$1$salt$00$x", "$x'"),
]


@pytest.mark.parametrize("spec, shown", BAD)
def test_parse_password_rejects_malformed(spec, shown):
    with pytest.raises(InvalidValueError, match="^password: expected ") as info:
        parse_password(spec)
    assert shown in str(info.value)


def test_parse_password_rejects_non_strings():
    with pytest.raises(InvalidValueError, match="^password: expected a string"):
        parse_password(None)


HEADERS = [
    # (Authorization header, accepted)
    (basic("alice", "a-pw")["Authorization"], True),
    (basic("bob", "b-pw")["Authorization"], True),
    (basic("carol", "c-pw")["Authorization"], True),
    ("basic " + basic("alice", "a-pw")["Authorization"].split()[1], True),  # scheme any case
    (basic("alice", "b-pw")["Authorization"], False),
    (basic("mallory", "a-pw")["Authorization"], False),
    (basic("alice", "")["Authorization"], False),
    ("Basic " + base64.b64encode(b"alice").decode(), False),  # no colon
    ("Basic " + base64.b64encode(b"\xff:a-pw").decode(), False),  # not UTF-8
    ("Basic !!!", False),
    ("Bearer a-pw", False),
    ("", False),
    (None, False),
]

USERS = {
    "alice": pbkdf2("a-pw"),
    "bob": scrypt("b-pw"),
    "carol": "plain$c-pw",
}


@pytest.mark.parametrize("header, accepted", HEADERS)
def test_credentials_check(header, accepted):
    creds = Credentials({u: parse_password(s) for u, s in USERS.items()})
    assert creds.check(header) is accepted
    assert creds.check(header) is accepted  # the same again, through the cache


def test_credentials_cache_spares_the_kdf_and_is_bounded(monkeypatch):
    creds = Credentials({"alice": parse_password(pbkdf2("a-pw"))})
    calls = []
    real = auth.verify
    monkeypatch.setattr(auth, "verify", lambda p, g: calls.append(g) or real(p, g))
    header = basic("alice", "a-pw")["Authorization"]
    for _ in range(5):
        assert creds.check(header)
    assert len(calls) == 1
    for _ in range(3):  # failures are never cached
        assert not creds.check(basic("alice", "wrong")["Authorization"])
    assert len(calls) == 4
    # Past 64 remembered credentials the oldest goes: many users, one each.
    many = Credentials({f"u{i}": parse_password(f"plain$p{i}") for i in range(70)})
    for i in range(70):
        assert many.check(basic(f"u{i}", f"p{i}")["Authorization"])
    assert len(many._ok) == 64


def test_credentials_unknown_user_costs_a_derivation_too(monkeypatch):
    creds = Credentials({"alice": parse_password(pbkdf2("a-pw"))})
    calls = []
    real = auth.verify
    monkeypatch.setattr(auth, "verify", lambda p, g: calls.append(g) or real(p, g))
    assert not creds.check(basic("nobody", "a-pw")["Authorization"])
    assert calls == [b"a-pw"]  # a decoy derivation: timing does not reveal user names


def test_credentials_refuse_at_once_while_derivations_are_bounded(monkeypatch):
    creds = Credentials({"alice": parse_password(pbkdf2("a-pw"))})
    calls = []
    monkeypatch.setattr(auth, "verify", lambda p, g: calls.append(g) or True)
    for _ in range(auth._DERIVATIONS):  # every slot taken, as by concurrent wrong passwords
        assert creds._derivations.acquire(blocking=False)
    assert not creds.check(basic("alice", "a-pw")["Authorization"])
    assert calls == []  # refused without deriving (and not cached: the next try derives)
    creds._derivations.release()
    assert creds.check(basic("alice", "a-pw")["Authorization"])
    assert calls == [b"a-pw"]


def test_server_users_and_basic_auth_together(serve):
    server = serve(basic_auth=("root", "r-pw"), users=USERS)
    for user, password in (("root", "r-pw"), ("alice", "a-pw"), ("bob", "b-pw")):
        assert request(server, headers=basic(user, password))[0] == 200
    status, headers, _ = request(server, headers=basic("alice", "r-pw"))
    assert status == 401
    assert headers["www-authenticate"] == 'Basic realm="dyn_metrics"'
    for path in ("/health", "/live", "/", "/nowhere"):
        assert request(server, path)[0] == 401


def test_server_auth_exempt_probes(serve):
    server = serve(users=USERS, auth_exempt_probes=True, health_path="/hc", live_path="/lc")
    assert request(server, "/hc")[0] == 200
    assert request(server, "/lc")[0] == 200
    for path in ("/metrics", "/", "/nowhere", "/health"):
        assert request(server, path)[0] == 401
    assert request(server, headers=basic("carol", "c-pw"))[0] == 200


def test_options_repr_hides_users():
    from dyn_metrics.server import ServerOptions

    options = ServerOptions(users={"carol": "plain$c-pw"}, basic_auth=("root", "r-pw"))
    assert "c-pw" not in repr(options) and "r-pw" not in repr(options)
    assert dict(options.users) == {"carol": "plain$c-pw"}
