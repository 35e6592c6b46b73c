"""``name[]`` selection: which families a scrape asked for.

A scrape with ``?name[]=x&name[]=y`` keeps a whole family when ``x`` or ``y``
is its name or one of its sample names, in either format's spelling (as
prometheus_client's restricted registry does). Registries select on
:class:`~dyn_metrics.model.Family` records or on a family's name and type
before encoding (:func:`wanted_names`, :func:`select_families`); only text
that arrives already rendered, from exposition-text callbacks, is cut by
family block (:func:`split_blocks`, which the registry's callback screening
uses too, and :func:`filter_text`).
"""

from collections.abc import Collection, Iterable
from typing import Optional

from ..model import ALL_SUFFIXES, COUNTER, INFO, OPENMETRICS_SUFFIXES, TEXT_SUFFIXES, Family


def wanted_names(family_name: str, type_word: str) -> frozenset[str]:
    """Every name under which ``name[]`` selects the family ``family_name`` of ``type_word``.

    ``family_name`` is the text 0.0.4 name (a counter's ``_total`` included).
    """
    names = {family_name + s for s in TEXT_SUFFIXES.get(type_word, ("",))}
    names.add(family_name)
    om_name = family_name
    if type_word == COUNTER and family_name.endswith("_total"):
        om_name = family_name[: -len("_total")]
    elif type_word == INFO and family_name.endswith("_info"):
        om_name = family_name[: -len("_info")]
    names.update(om_name + s for s in OPENMETRICS_SUFFIXES.get(type_word, ("",)))
    names.add(om_name)
    return frozenset(names)


def select_families(families: Iterable[Family], names: Collection[str]) -> list[Family]:
    """The families of ``families`` that ``names`` selects, in their order."""
    wanted = frozenset(names)
    return [
        f
        for f in families
        if not wanted_names(f.name, f.type).isdisjoint(wanted)
        or any(s.name in wanted for s in f.samples)
    ]


def _quoted(s: str) -> Optional[str]:
    """The text of the quoted string ``s`` starts with (escapes kept), else None."""
    if not s.startswith('"'):
        return None
    i = 1
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == '"':
            return s[1:i]
        i += 1
    return None


def _family_of(line: str) -> Optional[str]:
    """The family a HELP, TYPE or UNIT line names (quoted UTF-8 names too), else None."""
    parts = line.split(None, 2)
    if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE", "UNIT"):
        quoted = _quoted(parts[2])
        if quoted is not None:
            return quoted
        return parts[2].split(None, 1)[0]
    return None


def _sample_name(line: str) -> str:
    """The metric name a sample line starts with (``{"name",...}`` too); "" if none."""
    s = line.lstrip()
    if s.startswith("{"):
        return _quoted(s[1:].lstrip()) or ""
    head = s.split("{", 1)[0].split(None, 1)
    return head[0] if head else ""


def _belongs(sample: str, family: Optional[str]) -> bool:
    if family is None:
        return False
    return sample == family or (sample.startswith(family) and sample[len(family) :] in ALL_SUFFIXES)


def split_blocks(text: str) -> list[str]:
    """``text`` cut into family blocks; ``"".join`` of the result is ``text``.

    A block starts at a HELP/TYPE/UNIT line naming a new family, or at a
    sample line that does not belong to the current family (``x``,
    ``x_bucket``, ``x_sum``, ... belong to ``x``), as
    and ``# EOF`` alone. Lines end at ``\\n`` only, as the parser reads them
    (``str.splitlines`` would also cut at U+2028 or form feeds in label values).
    """
    blocks: list[str] = []
    block: list[str] = []
    family: Optional[str] = None
    lines = text.split("\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if i == last and not line:
            break
        start: Optional[str] = None
        if line.startswith("#"):
            named = _family_of(line)
            if named is not None and named != family:
                start = named
        elif line.strip():
            sample = _sample_name(line)
            if not _belongs(sample, family):
                start = sample
        if line.rstrip("\r") == "# EOF":
            start = ""  # OpenMetrics' end: a block of its own, named by no family
        if start is not None:
            if block:
                blocks.append("".join(block))
            block, family = [], start
        block.append(line if i == last else line + "\n")
    if block:
        blocks.append("".join(block))
    return blocks


def _block_names(block: str) -> set[str]:
    """The family name and sample names of one block of :func:`split_blocks`."""
    names: set[str] = set()
    for line in block.split("\n"):
        if line.startswith("#"):
            named = _family_of(line)
            if named is not None:
                names.add(named)
        elif line.strip():
            names.add(_sample_name(line))
    names.discard("")
    return names


def filter_text(text: str, names: Collection[str]) -> str:
    """Keep the family blocks of ``text`` whose name, or one of whose sample names, is in ``names``.

    Blocks as :func:`split_blocks` cuts them; ``# EOF`` is always kept.
    """
    wanted = frozenset(names)
    return "".join(
        block
        for block in split_blocks(text)
        if block.startswith("# EOF") or not wanted.isdisjoint(_block_names(block))
    )
