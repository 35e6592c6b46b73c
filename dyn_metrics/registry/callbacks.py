"""Screening exposition-text callbacks' texts before they join a scrape.

An engine's text must not make the whole exposition invalid (Prometheus
would drop the entire target). So a scrape serves each callback's text
family block by family block:

* a block that does not parse on its own (strict text 0.0.4) is dropped,
  reason ``invalid``;
* a block that repeats a name already in the exposition (a family or sample
  name of a native family, or of an earlier kept block, of this callback or
  an earlier one) is dropped, reason ``duplicate``: that covers a family
  split in two, a TYPE conflicting with a native family, and a block whose
  samples another family already owns.

Each drop is counted (:mod:`.stats`) and logged at ERROR once per
(callback, reason) per process. A text whose blocks are all kept is served
unchanged, byte for byte; otherwise the kept blocks are, in their order.
Dynamo's join rule stays (:func:`~.merge.join_texts`): a newline goes
between two texts only where the first lacks one; a text's last line
without its newline is served with one added at the end of the scrape.

Parsing is the expensive step, so :class:`Screener` keeps the last parse of
each callback and reuses it while the callback returns an equal text
(engines often return the same text), and the parse of each block whose
text did not change: a steady scrape pays one string comparison and a few
set look-ups per block, a scrape where some values changed the parse of
those families only.
"""

from collections.abc import Callable, Iterable
from typing import NamedTuple, Optional

from ..errors import LazyLogger, ParseError
from ..exposition.select import split_blocks
from ..model import TEXT_SUFFIXES, Family
from . import stats

__all__ = ["DUPLICATE", "INVALID", "Block", "Screened", "Screener", "claims", "split_blocks"]

_log = LazyLogger(__name__)

INVALID = "invalid"
DUPLICATE = "duplicate"
# A family the OpenMetrics scrape cannot write (reserved or quoted names, or
# one that would clash with another family's samples there).
INEXPRESSIBLE = "inexpressible"


class Block(NamedTuple):
    """One family block of a callback's text, as written, and what it holds."""

    text: str
    #: The parsed families; None when the block does not parse.
    families: Optional[tuple[Family, ...]]
    #: The parse error, when it does not parse.
    error: str
    #: Family and sample names it writes (checked against names already taken).
    names: frozenset[str]
    #: Names it takes from later blocks (its families' names and sample names).
    claims: frozenset[str]


class Screened(NamedTuple):
    """A callback's text split into blocks (the parse a :class:`Screener` caches)."""

    text: str
    blocks: tuple[Block, ...]


def claims(name: str, type_word: str) -> frozenset[str]:
    """The names a text 0.0.4 family ``name`` of ``type_word`` takes: its own and its samples'."""
    return frozenset({name} | {name + s for s in TEXT_SUFFIXES.get(type_word, ("",))})


def load_parser() -> None:
    """Import the parser (on first use: importing the package loads none)."""
    from ..exposition.parse import reader  # noqa: F401


def _parse(text: str) -> list[Family]:
    from ..exposition.parse.reader import parse

    return parse(text, "text")


def _block(text: str) -> Block:
    try:
        families = tuple(_parse(text if text.endswith("\n") else text + "\n"))
    except ParseError as exc:
        return Block(text, None, str(exc), frozenset(), frozenset())
    names = {f.name for f in families} | {s.name for f in families for s in f.samples}
    taken = set(names)
    for f in families:
        taken |= claims(f.name, f.type)
    return Block(text, families, "", frozenset(names), frozenset(taken))


def screen(text: str, known: Optional[dict[str, Block]] = None) -> Screened:
    """Split ``text`` into blocks and parse each one on its own (unless ``known`` has it)."""
    known = known or {}
    return Screened(text, tuple(known.get(b) or _block(b) for b in split_blocks(text)))


def _report(callback: object, reason: str, block: Block, clash: Iterable[str]) -> None:
    first = block.text.split("\n", 1)[0]
    if reason == INVALID:
        _log.error(
            "exposition text callback %r: a family block that is not valid text "
            "format 0.0.4 is dropped from the scrape (%s; block starts %r); "
            "logged once, counted in dyn_metrics_dropped_families_total",
            callback,
            block.error,
            first,
        )
    elif reason == INEXPRESSIBLE:
        _log.error(
            "exposition text callback %r: a family block that OpenMetrics cannot express "
            "is dropped from the OpenMetrics scrape (%s); logged once, counted in "
            "dyn_metrics_dropped_families_total",
            callback,
            ", ".join(sorted(clash)),
        )
    else:
        _log.error(
            "exposition text callback %r: a family block repeating a name already "
            "in the exposition is dropped from the scrape (%s); logged once, "
            "counted in dyn_metrics_dropped_families_total",
            callback,
            ", ".join(sorted(clash)) or "OpenMetrics names",
        )


class Screener:
    """One registry's callback state: the last :class:`Screened` of each, what was logged.

    Keyed by ``id(callback)``: the registry keeps its callbacks alive as long
    as this object, so an id is never reused while it matters. A callback
    added to two registries is logged once by each.
    """

    def __init__(self) -> None:
        self._cache: dict[int, Screened] = {}
        self._logged: dict[tuple[int, str], object] = {}

    def screened(self, callback: object, text: str) -> Screened:
        """The blocks of ``text``, reused while ``callback`` returns an equal text."""
        cached = self._cache.get(id(callback))
        if cached is not None and (cached.text is text or cached.text == text):
            return cached
        # Blocks whose text did not change since the last scrape are not parsed again.
        known = None if cached is None else {b.text: b for b in cached.blocks}
        result = screen(text, known)
        self._cache[id(callback)] = result  # one atomic store: a racing scrape only re-parses
        return result

    def drop(self, callback: object, reason: str, block: Block, clash: Iterable[str] = ()) -> None:
        """Log a dropped block at ERROR unless ``(callback, reason)`` was logged before."""
        # dict.setdefault is one atomic step under the GIL: no lock, so no
        # deadlock when a signal handler scrapes in the middle of a scrape.
        token = object()
        if self._logged.setdefault((id(callback), reason), token) is token:
            _report(callback, reason, block, clash)


#: A callback, the screener of its registry, and its screened text.
Source = tuple[object, Screener, Screened]


def keep(sources: Iterable[Source], taken: set[str]) -> list[tuple[Source, str, list[Block]]]:
    """Each source's text to serve and its kept blocks; ``taken`` grows with what is kept.

    A source whose blocks are all kept gives its text unchanged; otherwise the
    concatenation of the kept blocks. Drops are logged (once per callback and
    reason) and counted.
    """
    out: list[tuple[Source, str, list[Block]]] = []
    dropped = 0
    for source in sources:
        callback, screener, screened = source
        kept: list[Block] = []
        for block in screened.blocks:
            if block.families is None:
                dropped += 1
                screener.drop(callback, INVALID, block)
                continue
            if not block.names.isdisjoint(taken):
                dropped += 1
                screener.drop(callback, DUPLICATE, block, block.names & taken)
                continue
            taken |= block.claims
            kept.append(block)
        if len(kept) == len(screened.blocks):
            out.append((source, screened.text, kept))
        else:
            out.append((source, "".join(b.text for b in kept), kept))
    if dropped:
        stats.count_dropped_families(dropped)
    return out


def native_claims(names_and_types: Iterable[tuple[str, Iterable[str]]]) -> set[str]:
    """The names native families take: ``(name, its collectors' types)`` pairs."""
    taken: set[str] = set()
    for name, types in names_and_types:
        for t in types:
            taken |= claims(name, t)
    return taken


def run_texts(
    expfmt_callbacks: Iterable[Callable[[], str]],
) -> list[tuple[Callable[[], str], str]]:
    """``(callback, text)`` of each exposition-text callback that gave usable text.

    A callback that raises, returns something other than a ``str``, or text
    that cannot be encoded as UTF-8 (it would break the whole scrape when the
    server encodes it) is logged, counted and left out.
    """
    texts = []
    for callback in expfmt_callbacks:
        try:
            text: object = callback()
        except Exception:
            stats.count_callback_error("expfmt")
            _log.exception("Error executing exposition text callback: %r", callback)
            continue
        if not isinstance(text, str):
            stats.count_callback_error("expfmt")
            _log.error(
                "expfmt callback must return a string, %r returned %r",
                callback,
                type(text).__name__,
            )
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            stats.count_callback_error("expfmt")
            _log.error(
                "expfmt callback %r returned text that is not valid Unicode "
                "(it cannot be encoded as UTF-8); left out",
                callback,
            )
            continue
        texts.append((callback, text))
    return texts
