"""``name[]`` selection: which families a scrape asked for.

A scrape with ``?name[]=x&name[]=y`` keeps a whole family when ``x`` or ``y``
is its name or one of its sample names, in either format's spelling (as
prometheus_client's restricted registry does). Registries select on
:class:`~dyn_metrics.model.Family` records or on a family's name and type
before encoding (:func:`wanted_names`, :func:`select_families`); only text
that arrives already rendered, from exposition-text callbacks, is cut by
family block (:func:`filter_text`).
"""

import re
from collections.abc import Collection, Iterable
from typing import Optional

from ..model import ALL_SUFFIXES, COUNTER, OPENMETRICS_SUFFIXES, TEXT_SUFFIXES, Family


def wanted_names(family_name: str, type_word: str) -> frozenset[str]:
    """Every name under which ``name[]`` selects the family ``family_name`` of ``type_word``.

    ``family_name`` is the text 0.0.4 name (a counter's ``_total`` included).
    """
    names = {family_name + s for s in TEXT_SUFFIXES.get(type_word, ("",))}
    names.add(family_name)
    om_name = family_name
    if type_word == COUNTER and family_name.endswith("_total"):
        om_name = family_name[: -len("_total")]
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


def _family_of(line: str) -> Optional[str]:
    """The family a comment line names (``# HELP x``, ``# TYPE x``, ``# UNIT x``), else None."""
    parts = line.split(None, 3)
    if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE", "UNIT"):
        return parts[2]
    return None


def _belongs(sample: str, family: Optional[str]) -> bool:
    if family is None:
        return False
    if sample == family:
        return True
    return sample.startswith(family) and sample[len(family) :] in ALL_SUFFIXES


_LINES = re.compile(r"[^\n]*\n|[^\n]+\Z")


def _sample_name(line: str) -> str:
    """The metric name a sample line starts with (a quoted UTF-8 name unquoted)."""
    if line.startswith("{"):
        # Prometheus 3's form: {"my.metric",label="v"} 1
        quoted = re.match(r'\{\s*"((?:[^"\\]|\\.)*)"', line)
        return quoted.group(1) if quoted else ""
    return line.split("{", 1)[0].split(None, 1)[0]


def filter_text(text: str, names: Collection[str]) -> str:
    """Keep the family blocks of ``text`` whose name, or one of whose sample names, is in ``names``.

    A block starts at a HELP/TYPE/UNIT line naming a new family, or at a sample
    line that does not belong to the current family (``x``, ``x_bucket``,
    ``x_sum``, ... belong to ``x``). ``# EOF`` is always kept.
    """
    wanted = frozenset(names)
    out: list[str] = []
    block: list[str] = []
    family: Optional[str] = None
    samples: set[str] = set()
    # Lines end at "\n" only: str.splitlines would also cut at characters such
    # as U+2028 or form feeds inside label values.
    for line in _LINES.findall(text):
        sample: Optional[str] = None
        start: Optional[str] = None
        if line.startswith("#"):
            if line.rstrip("\r\n") == "# EOF":
                if family in wanted or not wanted.isdisjoint(samples):
                    out.extend(block)
                out.append(line)
                block, family, samples = [], None, set()
                continue
            named = _family_of(line)
            if named is not None and named != family:
                start = named
        elif line.strip():
            sample = _sample_name(line)
            if not _belongs(sample, family):
                start = sample
        if start is not None:
            if family in wanted or not wanted.isdisjoint(samples):
                out.extend(block)
            block, family, samples = [], start, set()
        if sample is not None:
            samples.add(sample)
        block.append(line)
    if family in wanted or not wanted.isdisjoint(samples):
        out.extend(block)
    return "".join(out)
