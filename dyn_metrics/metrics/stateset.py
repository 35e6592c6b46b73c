"""State sets: the cell, ``StateSet`` (prometheus_client's ``Enum``) and ``StateSetVec``.

A state set declares its states at creation; each child says which of them
are true. Used as an enum (``state(name)`` only), exactly one is true, the
first declared one until the first ``state()``; ``set(name, flag)`` turns
one state on or off (OpenMetrics stateset semantics) and leaves the others.

Every sample is named like the metric and carries a label named like the
metric too (prometheus_client's rule; under a hierarchy the full name, e.g.
``dynamo_component_worker_state="ready"``), value ``1`` or ``0``, one per
state in declared order. Text 0.0.4 writes the family as a gauge,
OpenMetrics as a ``stateset``.

No update takes a lock. A :class:`StateSetCell` holds a list ``[mask,
changes...]``: bit ``i`` of ``mask`` is state ``i``. ``state()`` stores a new
one-item list (one atomic attribute store); ``set()`` appends a change (one
atomic C-level ``list.append``): ``+bit`` turns the state on, ``-bit`` off.
A change appended to a list that ``state()`` has just replaced belongs to a
``set()`` that overlapped that ``state()``, so it counts as having come
first. Reads, and every 256 changes, fold the list left to right under the
cell's stripe (``cells.stripe``), only when it is free; otherwise (its own
thread holds it: a read nested in a signal handler during a scrape) a read
applies the changes of one atomic copy of the list, which changes nothing.
So every read sees a state the updates went through, never a mix.
"""

import operator
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar, Optional

from ..errors import InvalidLabelsError, InvalidNameError, InvalidValueError
from ..exposition import text as expfmt
from ..model import GAUGE, LABEL_NAME_RE, STATESET, Labels, Sample
from .cells import FOLD_AT, drop, stripe, take
from .desc import Desc, LabelsArg, check_utf8
from .family import Key, MetricFamily, Write, expose_only_child
from .vec import MetricVec, check_max_children


class StateNames:
    """The declared states of one state set: names in order and the bit of each."""

    __slots__ = ("metric", "names", "bits")

    def __init__(self, metric: str, states: object) -> None:
        """Check ``states`` (a non-empty sequence of distinct strings) for ``metric``.

        Raises :class:`InvalidValueError` naming the offending value.
        """
        if isinstance(states, (str, bytes)) or not isinstance(states, Iterable):
            raise InvalidValueError(
                f"states of {metric!r} must be a sequence of strings, got {states!r}"
            )
        names: list[str] = []
        for state in states:
            if not isinstance(state, str):
                raise InvalidValueError(f"states of {metric!r} must be strings, got {state!r}")
            check_utf8(state, InvalidValueError, f"state of {metric!r}")
            # A str subclass would hash like its text but print differently.
            state = str.__str__(state)
            if state in names:
                raise InvalidValueError(f"duplicate state {state!r} in states of {metric!r}")
            names.append(state)
        if not names:
            raise InvalidValueError(
                f"a state set needs at least one state, got none for {metric!r}"
            )
        self.metric = metric
        self.names = tuple(names)
        self.bits: Mapping[str, int] = {s: 1 << i for i, s in enumerate(names)}

    def bit(self, state: object) -> int:
        """The bit of a declared ``state``; :class:`InvalidValueError` for any other."""
        try:
            return self.bits[state]  # type: ignore[index]  # any value: refused below
        except (KeyError, TypeError):  # TypeError: unhashable
            raise InvalidValueError(
                f"{state!r} is not a state of {self.metric!r} (declared: {list(self.names)!r})"
            ) from None

    def true_states(self, mask: int) -> tuple[str, ...]:
        """The names of the states set in ``mask``, in declared order."""
        if mask and not mask & (mask - 1):  # one state: enum use
            return (self.names[mask.bit_length() - 1],)
        return tuple(s for i, s in enumerate(self.names) if mask >> i & 1)


_NONE = StateNames("", ("",))  # the placeholder of a bare cell; families pass their own


def _apply(items: Sequence[int]) -> int:
    """The mask that ``[mask, changes...]`` comes to, changes applied in order."""
    mask = items[0]
    for change in items[1:]:
        # +bit turns a state on; -bit turns it off (~bit == -bit - 1).
        mask = mask | change if change > 0 else mask & (change - 1)
    return mask


def _fold(pending: list[int]) -> int:
    """Fold ``pending`` into ``[mask]`` and return the mask; the cell's stripe is held.

    Updates only append (or replace the whole list), so the first n items
    are exactly the ones folded here, whatever was appended meanwhile.
    """
    n = len(pending)
    mask = _apply(pending[:n])
    if n > 1:
        pending[0:n] = [mask]
    return mask


class StateSetCell:
    """One child of a state set: which declared states are true (see the module docstring)."""

    __slots__ = ("_value", "_states")

    def __init__(self, lock: Optional[threading.Lock] = None, states: StateNames = _NONE) -> None:
        self._states = states
        self._value: list[int] = [1]  # the first declared state, as prometheus_client's Enum

    def state(self, state: str) -> None:
        """Make ``state`` the only true state (enum use); InvalidValueError if undeclared."""
        self._value = [self._states.bit(state)]

    def set(self, state: str, value: bool) -> None:
        """Turn one declared ``state`` on (``True``) or off (``False``), leaving the others.

        :class:`InvalidValueError` for an undeclared state or a ``value``
        that is not a bool; nothing changes then.
        """
        bit = self._states.bit(state)
        if value.__class__ is not bool:
            raise InvalidValueError(
                f"state {state!r} of {self._states.metric!r} must be set to True or False, "
                f"got {value!r}"
            )
        pending = self._value
        pending.append(bit if value else -bit)
        if len(pending) > FOLD_AT:
            lock = stripe(self)
            if take(lock, wait=False):  # busy: the holder, or the next read, folds
                try:
                    _fold(pending)
                finally:
                    drop(lock)

    def _mask(self) -> int:
        pending = self._value
        if len(pending) == 1:
            return pending[0]
        lock = stripe(self)
        if not take(lock, wait=False):
            return _apply(list(pending))  # one atomic copy; changes nothing
        try:
            return _fold(pending)
        finally:
            drop(lock)

    def get(self) -> tuple[str, ...]:
        """The true states, in declared order: ``("ready",)`` after ``state("ready")``.

        Used as an enum (``state()`` only) this is always one name; with
        ``set()`` it may be any number of them, ``()`` included.
        """
        return self._states.true_states(self._mask())

    @staticmethod
    def _read_many(cells: list["StateSetCell"]) -> list[int]:
        """The masks of many cells (no lock is waited for)."""
        return [cell._mask() for cell in cells]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} true={self.get()!r}>"


class StateSetFamily(MetricFamily[StateSetCell, int]):
    """Family core of state sets: the declared states and the state label.

    The state label is named like the metric, so that name must be a valid
    label name (:class:`InvalidNameError`) and no other label of the metric
    may have it (:class:`InvalidLabelsError`).
    """

    _cell_class = StateSetCell

    def __init__(self, desc: Desc, states: object) -> None:
        name = desc.name
        if LABEL_NAME_RE.fullmatch(name) is None or name.startswith("__"):
            raise InvalidNameError(
                f"state set name {name!r} must also be a valid label name (its state label is "
                f"named after it): [a-zA-Z_][a-zA-Z0-9_]*, not starting with '__'"
            )
        if name in desc.label_names or name in dict(desc.const_labels):
            raise InvalidLabelsError(
                f"label {name!r} of state set {name!r} is named like the metric, "
                f"which is the name of its state label"
            )
        self._states = StateNames(name, states)
        # Explicit base: StateSetVec puts MetricVec next in the MRO.
        MetricFamily.__init__(self, desc)
        # Where the state label goes among a child's labels, sorted by name.
        self._state_at = sum(1 for k, _, _ in self._slots if k < name)

    def _make_header(self) -> str:
        parts: list[str] = []
        # Text 0.0.4 has no stateset type: a gauge, as prometheus_client writes it.
        expfmt.write_header(parts.append, self.desc.name, GAUGE, self.desc.help)
        return "".join(parts)

    def _new_cell(self) -> StateSetCell:
        return StateSetCell(self._lock, self._states)

    @property
    def states(self) -> tuple[str, ...]:
        """The declared states, in order."""
        return self._states.names

    def _state_pairs(self, pairs: Labels) -> list[Labels]:
        """A child's label pairs for each state, the state label in name order."""
        name, at = self.desc.name, self._state_at
        head, tail = pairs[:at], pairs[at:]
        return [head + ((name, s),) + tail for s in self._states.names]

    def _samples(self, pairs: Labels, value: int) -> tuple[Sample, ...]:
        name = self.desc.name
        return tuple(
            Sample(name, labels, value >> i & 1)
            for i, labels in enumerate(self._state_pairs(pairs))
        )

    def write_text(self, write: Write) -> None:
        """Write this family in text 0.0.4; the same bytes as encoding :meth:`collect`."""
        order = self._sorted_children()
        version, keys, cells = order.version, order.keys, order.cells
        text = self._text
        if text is None or text[0] != version:
            text = self._text = (version, [p for key in keys for p in self._line_prefixes(key)])
        masks = self._cell_class._read_many(cells)
        if masks:
            n = len(self._states.names)
            values = ["1" if mask >> i & 1 else "0" for mask in masks for i in range(n)]
            write(self._header)
            write("\n".join(map(operator.add, text[1], values)))
            write("\n")

    def _line_prefixes(self, key: Key) -> list[str]:
        name = self.desc.name
        return [
            name + expfmt.format_labels(labels) + " "
            for labels in self._state_pairs(self._label_pairs(key))
        ]


class StateSet(StateSetFamily):
    """A state set with no label names: ``state(name)``, ``set(name, flag)``, ``get()``.

    ``states`` is a non-empty sequence of distinct strings; the first one is
    true at creation. Raises :class:`InvalidValueError` for bad ``states``,
    :class:`InvalidNameError` for a name that cannot also be a label name
    (``a:b``) or any ``unit``, :class:`InvalidLabelsError` for a constant
    label named like the metric. The methods below document the API; each
    instance shadows them with its one child's bound methods.
    """

    _methods: ClassVar[tuple[str, ...]] = ("state", "set", "get")

    def __init__(
        self,
        name: str,
        help: str,
        states: Iterable[str],
        const_labels: LabelsArg = None,
        *,
        unit: str = "",
    ) -> None:
        super().__init__(Desc(name, help, STATESET, const_labels, unit=unit), states)
        expose_only_child(self, self._methods)

    def state(self, state: str) -> None:
        """Make ``state`` the only true state; :class:`InvalidValueError` if undeclared."""

    def set(self, state: str, value: bool) -> None:
        """Turn one declared state on or off, leaving the others."""

    def get(self) -> tuple[str, ...]:
        """The true states in declared order (one name in enum use)."""
        raise NotImplementedError  # shadowed by the child's method


#: prometheus_client's name for a state set used as an enum.
Enum = StateSet


class StateSetVec(StateSetFamily, MetricVec[StateSetCell, int]):
    """State sets by label values; each child has the declared ``states``.

    ``max_children`` limits the distinct label sets (see ``vec.py``).
    """

    _type = STATESET

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        states: Iterable[str],
        const_labels: LabelsArg = None,
        *,
        max_children: Optional[int] = None,
        unit: str = "",
    ) -> None:
        limit = check_max_children(max_children)
        desc = Desc(name, help, STATESET, const_labels, label_names, unit=unit)
        StateSetFamily.__init__(self, desc, states)
        self._set_limit(limit)
