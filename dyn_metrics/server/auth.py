"""HTTP Basic auth for the server: several users, hashed passwords, a bounded cache.

A password is given as one of

* ``pbkdf2_sha256$ITER$SALT$HEX`` -- PBKDF2-HMAC-SHA256, ``ITER`` rounds, the
  salt's UTF-8 bytes, the derived key in hex (its length sets ``dklen``);
* ``scrypt$N$r$p$SALT$HEX`` -- scrypt with cost ``N`` (a power of two), block
  size ``r``, parallelism ``p``;
* ``plain$PASSWORD`` -- the password itself (everything after ``plain$``).

:func:`parse_password` checks one such string; :class:`Credentials` checks an
``Authorization`` header against every user. A key derivation costs tens of
milliseconds by design, and a scraper sends the same header every time, so a
successful check is remembered (keyed by a SHA-256 of the exact credentials,
never the plain text; at most 64 entries, least recently used first out).
Failures are never cached. Comparisons use :func:`hmac.compare_digest`.
"""

import base64
import binascii
import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple, Optional

from ..errors import InvalidValueError

_CACHE_SIZE = 64
# Key derivations under way at once, across all users. Wrong passwords are
# never cached, so without a bound a client sending them could keep every
# handler thread (probes included) busy deriving keys.
_DERIVATIONS = 2
FORMS = "'pbkdf2_sha256$ITER$SALT$HEX', 'scrypt$N$r$p$SALT$HEX' or 'plain$PASSWORD'"


class Password(NamedTuple):
    """A parsed password: ``kind`` is ``pbkdf2_sha256``, ``scrypt`` or ``plain``."""

    kind: str
    params: tuple[int, ...]  # (iterations,) or (n, r, p); () for plain
    salt: bytes
    digest: bytes  # the derived key, or the plain password's UTF-8 bytes


def _positive(text: str) -> Optional[int]:
    return int(text) if text.isdigit() and text.isascii() and int(text) > 0 else None


def parse_password(spec: object) -> Password:
    """Parse one hashed password; raise InvalidValueError naming it when it is malformed."""
    if not isinstance(spec, str):
        raise InvalidValueError(f"password: expected a string of the form {FORMS}, got {spec!r}")
    kind, _, rest = spec.partition("$")
    if kind == "plain" and rest:
        return Password("plain", (), b"", rest.encode("utf-8"))
    parts = rest.split("$")
    try:
        if kind == "pbkdf2_sha256" and len(parts) == 3:
            iterations = _positive(parts[0])
            if iterations is not None and parts[1]:
                return Password(kind, (iterations,), parts[1].encode(), _hex(parts[2]))
        if kind == "scrypt" and len(parts) == 5:
            n, r, p = (_positive(x) for x in parts[:3])
            if n is not None and r is not None and p is not None and n > 1 and n & (n - 1) == 0:
                return Password(kind, (n, r, p), parts[3].encode(), _hex(parts[4]))
    except ValueError:
        pass
    # A plain$ password with any text parses, so a refused one holds no password.
    raise InvalidValueError(f"password: expected {FORMS}, got {spec!r}")


def parse_users(text: str) -> tuple[tuple[str, str], ...]:
    """The ``(user, HASH)`` pairs of a users file: ``user:HASH`` lines, ``#`` comments.

    Raises InvalidValueError saying what a line should be; the message never
    quotes a line, where a password written without ``plain$`` would show.
    """
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, spec = line.partition(":")
        if not colon or not user:
            raise InvalidValueError(f"expected line {number} of the form user:HASH")
        if user in users:
            raise InvalidValueError(f"expected user {user!r} once only (again on line {number})")
        try:
            parse_password(spec)
        except InvalidValueError:
            raise InvalidValueError(f"expected line {number} with a HASH of {FORMS}") from None
        users[user] = spec
    if not users:
        raise InvalidValueError("expected at least one user:HASH line")
    return tuple(users.items())


def _hex(text: str) -> bytes:
    digest = bytes.fromhex(text)
    if not digest:
        raise ValueError("empty digest")
    return digest


def verify(password: Password, given: bytes) -> bool:
    """True when ``given`` (UTF-8 bytes) is ``password``."""
    if password.kind == "plain":
        return hmac.compare_digest(given, password.digest)
    size = len(password.digest)
    if password.kind == "pbkdf2_sha256":
        derived = hashlib.pbkdf2_hmac("sha256", given, password.salt, password.params[0], size)
    else:
        n, r, p = password.params
        maxmem = 128 * r * (n + p + 2) + (1 << 20)
        derived = hashlib.scrypt(
            given, salt=password.salt, n=n, r=r, p=p, maxmem=maxmem, dklen=size
        )
    return hmac.compare_digest(derived, password.digest)


class Credentials:
    """The users allowed in, checked against ``Authorization: Basic`` headers. Thread-safe."""

    def __init__(self, users: Mapping[str, Password]) -> None:
        self._users = dict(users)
        self._lock = threading.Lock()  # guards _ok
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self._derivations = threading.BoundedSemaphore(_DERIVATIONS)
        # An unknown user costs a derivation too, so timing does not tell
        # which user names exist.
        self._decoy: Optional[Password] = next(iter(self._users.values()), None)

    def check(self, header: Optional[str]) -> bool:
        """True when ``header`` carries the credentials of one of the users."""
        if not header:
            return False
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            raw = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        key = hashlib.sha256(raw).digest()
        with self._lock:
            if key in self._ok:
                self._ok.move_to_end(key)
                return True
        user, colon, given = raw.partition(b":")
        try:
            password = self._users.get(user.decode("utf-8"))
        except UnicodeDecodeError:
            password = None
        if not colon:
            return False
        if not self._derivations.acquire(blocking=False):
            return False  # refused at once while others derive keys (not cached: retried)
        try:
            if password is None:
                if self._decoy is not None:
                    verify(self._decoy, given)
                return False
            if not verify(password, given):
                return False
        finally:
            self._derivations.release()
        with self._lock:
            self._ok[key] = None
            if len(self._ok) > _CACHE_SIZE:
                self._ok.popitem(last=False)
        return True
