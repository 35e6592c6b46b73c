"""The layout of dyn_metrics' multiprocess files, version 1: reading and writing whole files.

Each process writes its values to one memory-mapped file in the multiprocess
directory; any process reads them all. A file is:

* a 16-byte header: the 6 bytes :data:`MAGIC` (``b"DYNMPV"``), the version
  as 2 ASCII digits (``b"01"``), the version again as a little-endian ``u32``
  (:data:`VERSION`), and a little-endian ``u32`` ``used``:
  the number of bytes holding entries, header included (so an empty file has
  ``used == 16``);
* entries, back to back from byte 16, each 8-byte aligned: a little-endian
  ``u32`` key length ``n``, the ``n`` bytes of the UTF-8 key, zero padding so
  that ``4 + n + padding`` is a multiple of 8, then two little-endian doubles,
  the value and the timestamp (seconds since the epoch; 0.0 when not kept).

The writer appends an entry by writing it whole past ``used`` and only then
storing the new ``used`` (one aligned 4-byte store), and updates a value with
one aligned 8-byte store: a process killed at any moment leaves a file whose
first ``used`` bytes are complete entries, at worst without its last update.
A reader never reads past ``used``; bytes beyond it are ignored.

A key is the JSON array ``[family, type, help, unit, sample, labels, mode]``
(:class:`Key`): the family name as in :mod:`dyn_metrics.model` (a counter's
with its ``_total``), the model type word, help, unit, the full sample name,
the label pairs as ``[[name, value], ...]`` in exposition order, and the
gauge mode (``""`` for other types). Values by type:

* counter: the sample's value; summary: ``_sum`` and ``_count``;
* histogram: one ``_bucket`` entry per bound (``le`` label last) holding the
  observations in that bucket only, not cumulative (``+Inf`` holds those above
  every bound, NaN included), and ``_sum``; the count is the buckets' total;
* gauge (info and stateset too): the value, with the time of the last update
  as timestamp for the ``mostrecent`` modes.

The aggregate file of the dead processes (written by compaction, never
memory-mapped) has the same layout; its entries with type :data:`FOLDED`
name, as their sample, the process files already folded into it. Entries of
type :data:`PAD` carry nothing and are skipped by readers.

File names (:func:`process_file_name`, :func:`retired_file_name`,
:func:`parse_file_name`): ``dm_<pid>.dmdb`` for a live process,
``dm_<pid>_<stamp>.retired.dmdb`` once it is dead, :data:`AGGREGATE`
(``dm_aggregate.dmdb``) for the folded dead ones, :data:`LOCK` (``dm.lock``)
for compaction's lock; anything else in the directory (prometheus_client's
``*.db`` files included) is not ours. The extension :data:`EXTENSION` is one
prometheus_client's ``MultiProcessCollector`` (which reads every ``*.db``
file of the directory) never globs, so both libraries share a directory.

Files are read with :func:`read_bytes`: opened without blocking and read
only if they are regular files (a FIFO or device named like ours never
hangs a reader).
"""

import json
import os
import secrets
import stat
import struct
from collections.abc import Iterable
from typing import NamedTuple, Optional

from ..model import Labels

MAGIC = b"DYNMPV"
VERSION = 1
HEADER = struct.Struct("<6s2sII")  # magic, version digits, version, used
HEADER_SIZE = HEADER.size  # 16
VALUE = struct.Struct("<dd")  # value, timestamp
LENGTH = struct.Struct("<I")
#: The key type of an aggregate file's record of a process file folded into it.
FOLDED = "_folded"
#: The aggregate file of dead processes, and the lock file compaction takes.
#: The extension of every dyn_metrics data file (not ``.db``: prometheus_client globs those).
EXTENSION = ".dmdb"
AGGREGATE = "dm_aggregate" + EXTENSION
LOCK = "dm.lock"
#: How :func:`write_file` names its temporary files.
TEMPORARY_PREFIX = ".dm-tmp-"
#: Padding entries (type ``_pad``) fill the end of a mapped segment an entry would straddle.
PAD = "_pad"


class Key(NamedTuple):
    """What an entry is the value of (see the module docstring)."""

    family: str
    type: str
    help: str
    unit: str
    sample: str
    labels: Labels
    mode: str = ""


def process_file_name(pid: int) -> str:
    """The file a live process ``pid`` writes: ``dm_<pid>.dmdb``."""
    return f"dm_{pid}{EXTENSION}"


def retired_file_name(pid: int, stamp: int) -> str:
    """The name a process file gets once its process is dead: ``dm_<pid>_<stamp>.retired.dmdb``.

    ``stamp`` (``time.time_ns()`` at retirement) keeps two retirements of a
    reused pid apart.
    """
    return f"dm_{pid}_{stamp}{_RETIRED}"


_RETIRED = ".retired" + EXTENSION


def parse_file_name(name: str) -> Optional[tuple[str, int]]:
    """``("live", pid)``, ``("retired", pid)``, ``("aggregate", 0)``, or None for another file."""
    if name == AGGREGATE:
        return "aggregate", 0
    if not (name.startswith("dm_") and name.endswith(EXTENSION)):
        return None
    middle = name[3 : -len(EXTENSION)]
    if middle.isdigit() and middle.isascii():
        return "live", int(middle)
    stamped = retired_stamp(name)
    if stamped is not None:
        return "retired", stamped[0]
    return None


def retired_stamp(name: str) -> Optional[tuple[int, int]]:
    """``(pid, stamp)`` of a retired file's name, else None."""
    if not (name.startswith("dm_") and name.endswith(_RETIRED)):
        return None
    pid, _, stamp = name[3 : -len(_RETIRED)].partition("_")
    if pid.isdigit() and stamp.isdigit() and pid.isascii() and stamp.isascii():
        return int(pid), int(stamp)
    return None


class LayoutError(ValueError):
    """A file that is not a readable version-1 multiprocess file (truncated, corrupt, newer)."""


def encode_key(key: Key) -> bytes:
    """The UTF-8 JSON of ``key`` (compact, so equal keys give equal bytes)."""
    fields = [key.family, key.type, key.help, key.unit, key.sample, [list(p) for p in key.labels]]
    return json.dumps(fields + [key.mode], ensure_ascii=False, separators=(",", ":")).encode()


def decode_key(data: bytes) -> Key:
    """The :class:`Key` of an entry's key bytes; :class:`LayoutError` if they are not one."""
    try:
        fields = json.loads(data.decode("utf-8"))
        family, type_word, help_text, unit, sample, labels, mode = fields
        pairs = tuple((str(k), str(v)) for k, v in labels)
        if not all(isinstance(f, str) for f in (family, type_word, help_text, unit, sample, mode)):
            raise TypeError("a key field is not a string")
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise LayoutError(f"bad entry key {data[:80]!r}: {exc}") from None
    return Key(family, type_word, help_text, unit, sample, pairs, mode)


def entry_size(key_bytes: bytes) -> int:
    """Bytes an entry with these key bytes takes, padding and the two doubles included."""
    return (4 + len(key_bytes) + 7) // 8 * 8 + VALUE.size


def encode_entry(key_bytes: bytes, value: float, timestamp: float = 0.0) -> bytes:
    """One entry; its two doubles are the last 16 bytes (the value at ``len - 16``)."""
    head = LENGTH.pack(len(key_bytes)) + key_bytes
    head += b"\x00" * (-len(head) % 8)
    return head + VALUE.pack(value, timestamp)


def header(used: int) -> bytes:
    """The 16-byte header of a file whose entries end at ``used``."""
    return HEADER.pack(MAGIC, b"%02d" % VERSION, VERSION, used)


def parse(data: bytes) -> list[tuple[Key, float, float]]:
    """The ``(key, value, timestamp)`` entries of a whole file's bytes, in file order.

    Raises :class:`LayoutError` for a wrong magic, another version, a
    ``used`` past the data, or an entry that runs past ``used``.
    """
    if len(data) < HEADER_SIZE:
        raise LayoutError(f"{len(data)} bytes: shorter than the {HEADER_SIZE}-byte header")
    magic, digits, version, used = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise LayoutError(f"not a dyn_metrics multiprocess file (magic {magic!r})")
    if version != VERSION or digits != b"%02d" % VERSION:
        raise LayoutError(f"layout version {version} is not {VERSION}")
    if not HEADER_SIZE <= used <= len(data):
        raise LayoutError(f"used {used} outside the file's {len(data)} bytes")
    out = []
    pos = HEADER_SIZE
    while pos < used:
        if pos + 4 > used:
            raise LayoutError(f"entry at {pos} cut short")
        (n,) = LENGTH.unpack_from(data, pos)
        key_end = pos + 4 + n
        value_at = (key_end + 7) // 8 * 8
        if value_at + VALUE.size > used:
            raise LayoutError(f"entry at {pos} runs past used {used}")
        key = decode_key(data[pos + 4 : key_end])
        value, timestamp = VALUE.unpack_from(data, value_at)
        out.append((key, value, timestamp))
        pos = value_at + VALUE.size
    return out


class NotRegularFileError(OSError):
    """A path named like a data file that is not a regular file (a FIFO, a device, ...)."""


def read_bytes(path: str) -> bytes:
    """The whole content of the regular file at ``path``, opened without blocking.

    OSError if it cannot be read (FileNotFoundError if gone);
    :class:`NotRegularFileError` if it is not a regular file (then nothing is
    read, so a FIFO or a device never blocks the caller).
    """
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"{path!r} is not a regular file (mode {oct(mode)})")
        return f.read()


def read_file(path: str) -> list[tuple[Key, float, float]]:
    """:func:`parse` of the file at ``path`` (OSError as :func:`read_bytes` raises)."""
    return parse(read_bytes(path))


def write_file(path: str, entries: Iterable[tuple[Key, float, float]]) -> None:
    """Write a whole file atomically: a temporary file beside ``path``, fsync, rename.

    A reader sees the old file or the new one, never a part; a crash leaves at
    worst a temporary file (named :data:`TEMPORARY_PREFIX`...), which is not a
    process file and is ignored. The file is created with mode ``0o644`` less
    the umask, as a process file is, so processes of other users can read it.
    """
    body = b"".join(encode_entry(encode_key(k), v, t) for k, v, t in entries)
    directory = os.path.dirname(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(directory, TEMPORARY_PREFIX + secrets.token_hex(8))
        try:
            fd = os.open(tmp, flags, 0o644)  # the umask applies, as to any new file
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header(HEADER_SIZE + len(body)) + body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
