"""Info metrics: the cell, ``Info`` and ``InfoVec``.

An info metric states facts as labels: ``Info("build", ...)`` with
``info({"version": "1.2"})`` is the one sample ``build_info{version="1.2"} 1``.
Its family is named like its samples (``build_info``, ``model.Family``'s
convention): text 0.0.4 writes it as that gauge, OpenMetrics as the ``info``
family ``build``. Until ``info()`` is called, the sample carries the
metric's constant (and a child's variable) labels only, as prometheus_client
writes it. Every label, constant, variable or info key, is written in name
order, as every other type sorts its labels.

``info()`` validates the mapping, then stores one new immutable tuple of
label pairs (one atomic attribute store): no lock, and a reader, a signal
handler or a concurrent ``info()`` sees either the old labels or the new
ones, never a mix.
"""

import threading
from collections.abc import Iterable, Mapping
from typing import ClassVar, Optional

from ..errors import InvalidLabelsError, InvalidNameError
from ..exposition import text as expfmt
from ..model import GAUGE, INFO, LABEL_NAME_RE, Labels, Sample
from ..prometheus_names import validate_metric_name
from .desc import Desc, LabelsArg, check_utf8
from .family import MetricFamily, Write, expose_only_child
from .vec import MetricVec, check_max_children

_SUFFIX = "_info"


#: Accepted info label names remembered per metric, so that a steady ``info()``
#: checks each name with one set lookup; beyond this many, names are checked anew.
_REMEMBER = 64


class InfoKeys:
    """What an info mapping of one metric may not use as label names."""

    __slots__ = ("metric", "labels", "own", "accepted")

    def __init__(self, metric: str, labels: Iterable[str] = ()) -> None:
        """``metric`` is the name as given (``build``); ``labels`` its label names."""
        self.metric = metric
        self.labels = frozenset(labels)
        # The metric's own names, with and without the suffix.
        self.own = frozenset((metric, metric + _SUFFIX))
        # Plain str names that passed every check below (set.add is atomic).
        self.accepted: set[str] = set()

    def check(self, info: object) -> Labels:
        """``info`` as label pairs sorted by name, or a typed error naming the bad item.

        ``info`` must be a mapping of label names to strings. A name must be
        a valid label name not starting with ``__`` (:class:`InvalidNameError`),
        and neither a label of the metric nor named like the metric
        (:class:`InvalidLabelsError`); a value must be a string that UTF-8
        can encode (:class:`InvalidLabelsError`).
        """
        if not isinstance(info, dict) and not isinstance(info, Mapping):
            raise InvalidLabelsError(
                f"info of {self.metric!r} must be a dict of label names to string values, "
                f"got {info!r}"
            )
        accepted = self.accepted
        pairs = []
        for key, value in list(info.items()):
            if key.__class__ is not str or key not in accepted:
                key = self._check_key(key)
            if value.__class__ is not str or not value.isascii():
                value = self._check_value(key, value)
            pairs.append((key, value))
        pairs.sort()
        return tuple(pairs)

    def _check_key(self, key: object) -> str:
        metric = self.metric
        if not isinstance(key, str):
            raise InvalidLabelsError(f"info label names of {metric!r} must be strings, got {key!r}")
        # A str subclass would hash like its text but print differently.
        key = str.__str__(key)
        if LABEL_NAME_RE.fullmatch(key) is None or key.startswith("__"):
            raise InvalidNameError(
                f"{key!r} is not a valid info label name of {metric!r} "
                f"(expected [a-zA-Z_][a-zA-Z0-9_]*, not starting with '__')"
            )
        if key in self.own:
            raise InvalidLabelsError(f"info label {key!r} of {metric!r} is named like the metric")
        if key in self.labels:
            raise InvalidLabelsError(
                f"info label {key!r} of {metric!r} is already a label of the metric"
            )
        if len(self.accepted) < _REMEMBER:
            self.accepted.add(key)
        return key

    def _check_value(self, key: str, value: object) -> str:
        if not isinstance(value, str):
            raise InvalidLabelsError(
                f"info label {key!r} of {self.metric!r} needs a string value, got {value!r}"
            )
        check_utf8(value, InvalidLabelsError, f"info label {key!r} of {self.metric!r}")
        return str.__str__(value)


_BARE = InfoKeys("")  # the rules of a bare cell; families pass their own


class InfoCell:
    """One child of an info metric: its info label pairs (see the module docstring)."""

    __slots__ = ("_pairs", "_keys")

    def __init__(self, lock: Optional[threading.Lock] = None, keys: InfoKeys = _BARE) -> None:
        self._keys = keys
        self._pairs: Labels = ()

    def info(self, info: Mapping[str, str]) -> None:
        """Replace the info labels with ``info`` (``{name: value}``); see :meth:`InfoKeys.check`.

        A refused mapping changes nothing.
        """
        self._pairs = self._keys.check(info)

    def get(self) -> dict[str, str]:
        """The info labels last set, as a new dict (``{}`` before the first ``info()``)."""
        return dict(self._pairs)

    @staticmethod
    def _read_many(cells: list["InfoCell"]) -> list[Labels]:
        """The label pairs of many cells (each one attribute read: no lock)."""
        return [cell._pairs for cell in cells]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} info={self.get()!r}>"


class InfoFamily(MetricFamily[InfoCell, Labels]):
    """Family core of info metrics: one sample per child, value ``1``.

    ``desc.name`` ends in ``_info``. No label of the metric may be named like
    the metric, with or without ``_info`` (:class:`InvalidLabelsError`).
    """

    _cell_class = InfoCell

    def __init__(self, desc: Desc) -> None:
        names = [k for k, _ in desc.const_labels] + list(desc.label_names)
        keys = InfoKeys(desc.name[: -len(_SUFFIX)], names)
        clash = sorted(keys.labels & keys.own)
        if clash:
            raise InvalidLabelsError(
                f"label {clash[0]!r} of info metric {keys.metric!r} is named like the metric"
            )
        self._keys = keys
        # Explicit base: InfoVec puts MetricVec next in the MRO.
        MetricFamily.__init__(self, desc)

    def _make_header(self) -> str:
        parts: list[str] = []
        # Text 0.0.4 has no info type: the gauge named like the samples.
        expfmt.write_header(parts.append, self.desc.name, GAUGE, self.desc.help)
        return "".join(parts)

    def _new_cell(self) -> InfoCell:
        return InfoCell(self._lock, self._keys)

    def _samples(self, pairs: Labels, value: Labels) -> tuple[Sample, ...]:
        # Names are distinct across the two (checked by info()), so this sorts by name.
        return (Sample(self.desc.name, tuple(sorted(pairs + value)) if value else pairs, 1),)

    def write_text(self, write: Write) -> None:
        """Write this family in text 0.0.4; the same bytes as encoding :meth:`collect`."""
        order = self._sorted_children()
        keys, cells = order.keys, order.cells
        values = self._cell_class._read_many(cells)
        if not values:
            return
        name, label_pairs, fmt = self.desc.name, self._label_pairs, expfmt.format_labels
        out = [self._header]
        for key, info in zip(keys, values):
            pairs = label_pairs(key)
            out.append(name + fmt(tuple(sorted(pairs + info)) if info else pairs) + " 1\n")
        write("".join(out))


def _info_desc(
    name: str,
    help: str,
    const_labels: LabelsArg,
    label_names: Iterable[str] = (),
    unit: str = "",
) -> Desc:
    # The given name is checked first, so errors name what the caller wrote.
    validate_metric_name(name)
    return Desc(name + _SUFFIX, help, INFO, const_labels, label_names, unit=unit)


class Info(InfoFamily):
    """An info metric with no label names: ``info({name: value})``, ``get()``.

    ``Info("build", ...)`` is the family ``build_info``. Raises
    :class:`InvalidNameError` for a bad name or any ``unit``, and
    :class:`InvalidLabelsError` for a constant label named like the metric
    (``build`` or ``build_info``). The methods below document the API; each
    instance shadows them with its one child's bound methods.
    """

    _methods: ClassVar[tuple[str, ...]] = ("info", "get")

    def __init__(
        self, name: str, help: str, const_labels: LabelsArg = None, *, unit: str = ""
    ) -> None:
        super().__init__(_info_desc(name, help, const_labels, unit=unit))
        expose_only_child(self, self._methods)

    def info(self, info: Mapping[str, str]) -> None:
        """Replace the info labels (``{name: value}``); a refused mapping changes nothing."""

    def get(self) -> dict[str, str]:
        """The info labels last set (``{}`` before the first ``info()``)."""
        raise NotImplementedError  # shadowed by the child's method


class InfoVec(InfoFamily, MetricVec[InfoCell, Labels]):
    """Info metrics by label values; each child has its own ``info()``.

    ``InfoVec("build", ...)`` is the family ``build_info``. ``max_children``
    limits the distinct label sets (see ``vec.py``).
    """

    _type = INFO

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: LabelsArg = None,
        *,
        max_children: Optional[int] = None,
        unit: str = "",
    ) -> None:
        limit = check_max_children(max_children)
        InfoFamily.__init__(self, _info_desc(name, help, const_labels, label_names, unit))
        self._set_limit(limit)
