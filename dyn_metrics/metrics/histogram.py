"""Histograms: bucket bounds, ``Histogram`` and ``HistogramVec``.

The cell is :class:`~.histogram_cell.HistogramCell` (a native histogram's
:class:`~.native_cell.NativeHistogramCell`), whose docstring says how
``observe`` stays one append.

Bucket bounds follow rust-prometheus: strictly increasing, ``+Inf`` implied,
:data:`DEFAULT_BUCKETS` when none are given; an observation counts in every
bucket whose bound is >= the value, NaN in ``+Inf`` only.
"""

import math
from collections.abc import Iterable, Mapping
from typing import Optional

from ..errors import InvalidBucketsError
from ..exposition import text as expfmt
from ..model import HISTOGRAM, Labels, Sample
from .desc import Desc, LabelsArg
from .exemplars import as_exemplar
from .family import MetricFamily, Write, expose_only_child
from .histogram_cell import DEFAULT_BUCKETS, HistogramCell, HistogramSnapshot
from .native_buckets import DEFAULT_ZERO_THRESHOLD
from .native_cell import NativeHistogramCell
from .native_histogram import DEFAULT_MAX_BUCKETS, DEFAULT_SCHEMA, NativeOptions, native_options
from .timer import Timer
from .vec import MetricVec, check_max_children


def linear_buckets(start: float, width: float, count: int) -> list[float]:
    """``count`` buckets: ``start``, ``start + width``, ... (rust-prometheus' rule)."""
    if count < 1:
        raise InvalidBucketsError(f"linear_buckets needs a positive count, got {count!r}")
    if width <= 0:
        raise InvalidBucketsError(f"linear_buckets needs a positive width, got {width!r}")
    return [start + i * width for i in range(count)]


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    """``count`` buckets: ``start``, ``start * factor``, ... (rust-prometheus' rule)."""
    if count < 1:
        raise InvalidBucketsError(f"exponential_buckets needs a positive count, got {count!r}")
    if start <= 0:
        raise InvalidBucketsError(f"exponential_buckets needs a positive start, got {start!r}")
    if factor <= 1:
        raise InvalidBucketsError(
            f"exponential_buckets needs a factor greater than 1, got {factor!r}"
        )
    return [start * factor**i for i in range(count)]


def check_buckets(buckets: Optional[Iterable[float]]) -> tuple[float, ...]:
    """Validated bucket bounds as a tuple of floats (rust-prometheus' rules).

    As ``check_and_adjust_buckets`` does: ``None`` or empty means
    :data:`DEFAULT_BUCKETS`; the bounds must increase strictly; then a
    trailing ``+Inf`` is dropped because the ``+Inf`` bucket is always there,
    so ``[math.inf]`` leaves only that bucket. A bound that is not a number,
    is NaN or overflows a float raises :class:`InvalidBucketsError`.
    """
    if buckets is None:
        return DEFAULT_BUCKETS
    if isinstance(buckets, (str, bytes)):
        raise InvalidBucketsError(f"buckets must be a sequence of numbers, got {buckets!r}")
    try:
        bounds = [float(b) for b in buckets]
    except OverflowError:
        raise InvalidBucketsError(f"bucket bounds must fit in a float, got {buckets!r}") from None
    except (TypeError, ValueError):
        raise InvalidBucketsError(f"buckets must be numbers, got {buckets!r}") from None
    if not bounds:
        return DEFAULT_BUCKETS
    for b in bounds:
        if math.isnan(b):
            raise InvalidBucketsError(f"bucket bounds must not be NaN, got {buckets!r}")
    for lower, upper in zip(bounds, bounds[1:]):
        if lower >= upper:
            raise InvalidBucketsError(
                "histogram buckets must be in increasing order: "
                f"{expfmt.format_value(lower)} >= {expfmt.format_value(upper)}"
            )
    if bounds[-1] == math.inf:
        bounds.pop()
    return tuple(bounds)


class HistogramDesc(Desc):
    """A histogram's :class:`Desc`: every Desc check, then the bucket bounds'.

    ``buckets`` holds the validated bounds (:func:`check_buckets`); ``le`` is
    refused as a label name. ``native`` holds the validated native-histogram
    options (``native_histogram.check_native``) or None; a native histogram
    given no ``buckets`` has no classic buckets (only ``+Inf``). Raises
    :class:`InvalidBucketsError` besides the errors of :class:`Desc`.
    """

    __slots__ = ("native",)
    buckets: tuple[float, ...]
    native: Optional[NativeOptions]

    def __init__(
        self,
        name: str,
        help: str,
        const_labels: LabelsArg = None,
        label_names: Iterable[str] = (),
        buckets: Optional[Iterable[float]] = None,
        unit: str = "",
        native: Optional[NativeOptions] = None,
    ) -> None:
        self.native = native
        super().__init__(name, help, HISTOGRAM, const_labels, label_names, buckets, unit)

    def _check_buckets(self, buckets: Optional[Iterable[float]]) -> tuple[float, ...]:
        if buckets is None and self.native is not None:
            return ()
        return check_buckets(buckets)


class HistogramFamily(MetricFamily[HistogramCell, HistogramSnapshot]):
    """Family core of histograms: per-child buckets, sum and count."""

    desc: HistogramDesc
    _cell_class = HistogramCell

    def __init__(self, desc: HistogramDesc) -> None:
        # Explicit base: HistogramVec puts MetricVec next in the MRO.
        MetricFamily.__init__(self, desc)
        self._le = tuple(expfmt.format_value(b) for b in desc.buckets) + ("+Inf",)

    def _new_cell(self) -> HistogramCell:
        native = self.desc.native
        if native is None:
            return HistogramCell(self._lock, self.desc.buckets)
        # Reading many cells stays HistogramCell._read_many, which each cell's
        # _snapshot serves.
        return NativeHistogramCell(self._lock, self.desc.buckets, native)

    def _samples(self, pairs: Labels, value: HistogramSnapshot) -> tuple[Sample, ...]:
        cumulative, total, count, native = value
        name = self.desc.name
        samples = [
            Sample(name + "_bucket", pairs + (("le", le),), c)
            for le, c in zip(self._le, cumulative)
        ]
        samples.append(Sample(name + "_sum", pairs, total))
        samples.append(Sample(name + "_count", pairs, count, native=native))
        return tuple(samples)

    def _with_exemplars(
        self, samples: tuple[Sample, ...], cell: HistogramCell
    ) -> tuple[Sample, ...]:
        exemplars = cell._exemplars
        if exemplars is None:
            return samples
        # The bucket samples come first, one per bucket, in bucket order.
        kept = list(samples)
        for i, ex in enumerate(list(exemplars)):
            if ex is not None:
                kept[i] = kept[i]._replace(exemplar=as_exemplar(ex))
        return tuple(kept)

    def write_text(self, write: Write) -> None:
        """Write this family in text 0.0.4; the same bytes as encoding :meth:`collect`."""
        snapshot = self._snapshot()
        if not snapshot:
            return
        name = self.desc.name
        fmt = expfmt.format_value
        out = [self._header]
        bucket_open = name + "_bucket{"
        for key, (cumulative, total, count, _), _, _ in snapshot:
            labels = expfmt.format_labels(self._label_pairs(key))
            inner = labels[1:-1] + "," if labels else ""
            out.extend(
                f'{bucket_open}{inner}le="{le}"}} {c}\n' for le, c in zip(self._le, cumulative)
            )
            out.append(f"{name}_sum{labels} {fmt(total)}\n{name}_count{labels} {count}\n")
        write("".join(out))


class Histogram(HistogramFamily):
    """A histogram: ``observe(v)``, ``time()``, ``start_timer()``,
    ``get_sample_count()``, ``get_sample_sum()``.

    ``buckets`` defaults to :data:`DEFAULT_BUCKETS`; bounds must increase
    strictly. Observations count in every bucket whose bound is >= the value.
    ``native=True`` adds exponential buckets (``native_histogram.py``:
    ``schema`` -4..8, ``zero_threshold``, ``max_buckets``), served in the
    protobuf exposition; a native histogram has classic buckets only when
    ``buckets`` are given (text then shows ``_count``, ``_sum`` and ``+Inf``).
    The methods below document the API; each instance shadows them with its
    one child's bound methods (``family.expose_only_child``).
    """

    _methods = ("observe", "time", "start_timer", "get_sample_count", "get_sample_sum")

    def __init__(
        self,
        name: str,
        help: str,
        const_labels: LabelsArg = None,
        buckets: Optional[Iterable[float]] = None,
        *,
        unit: str = "",
        native: bool = False,
        schema: int = DEFAULT_SCHEMA,
        zero_threshold: float = DEFAULT_ZERO_THRESHOLD,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        options = native_options(native, schema, zero_threshold, max_buckets)
        super().__init__(
            HistogramDesc(name, help, const_labels, buckets=buckets, unit=unit, native=options)
        )
        expose_only_child(self, self._methods)

    def observe(self, value: float, exemplar: Optional[Mapping[str, str]] = None) -> None:
        """Record one observation; ``exemplar`` as for ``HistogramCell.observe``."""

    def time(self) -> Timer:
        """Context manager / decorator observing elapsed seconds."""
        raise NotImplementedError  # shadowed by the child's method

    def start_timer(self) -> Timer:
        """A started timer; call ``observe_duration()`` on it."""
        raise NotImplementedError  # shadowed by the child's method

    def get_sample_count(self) -> int:
        """Number of observations."""
        raise NotImplementedError  # shadowed by the child's method

    def get_sample_sum(self) -> float:
        """Sum of observations."""
        raise NotImplementedError  # shadowed by the child's method


class HistogramVec(HistogramFamily, MetricVec[HistogramCell, HistogramSnapshot]):
    """Histograms by label values (``HistogramVec``); ``buckets`` as for Histogram.

    ``max_children`` limits the distinct label sets (see ``vec.py``).
    """

    _type = HISTOGRAM

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: LabelsArg = None,
        buckets: Optional[Iterable[float]] = None,
        *,
        max_children: Optional[int] = None,
        unit: str = "",
        native: bool = False,
        schema: int = DEFAULT_SCHEMA,
        zero_threshold: float = DEFAULT_ZERO_THRESHOLD,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        limit = check_max_children(max_children)
        options = native_options(native, schema, zero_threshold, max_buckets)
        HistogramFamily.__init__(
            self,
            HistogramDesc(
                name, help, const_labels, label_names, buckets=buckets, unit=unit, native=options
            ),
        )
        self._set_limit(limit)
