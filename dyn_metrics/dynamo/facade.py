"""The ``create_*`` facade of every hierarchy node: ``node.metrics`` (or ``node.metrics()``).

A :class:`Metrics` object creates metrics the way Dynamo's ``MetricsHierarchy``
does and registers them in its node's registry only. Dynamo checks, in this
order, and so does every ``create_*``:

1. duplicate user label keys are refused;
2. the name is sanitised and prefixed: ``build_component_metric_name``;
3. user labels may not use the auto-label names (``dynamo_namespace``,
   ``dynamo_component``, ``dynamo_endpoint``, ``worker_id``), nor may a Vec's
   variable label names;
4. the node's auto labels are added (the hierarchy computes them; see
   :mod:`dyn_metrics.dynamo.hierarchy`);
5. the metric is validated and registered in this node's registry only.

A failed ``create_*`` raises and registers nothing. The returned metric is the
object that is scraped: keep it and update it.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Optional, TypeVar

from .. import prometheus_names as names
from ..errors import InvalidLabelsError, InvalidNameError, RegistrationError
from ..metrics import (
    DEFAULT_MAX_BUCKETS,
    DEFAULT_SCHEMA,
    DEFAULT_ZERO_THRESHOLD,
    Counter,
    CounterVec,
    Gauge,
    GaugeVec,
    Histogram,
    HistogramVec,
    Info,
    InfoVec,
    IntCounter,
    IntCounterVec,
    IntGauge,
    IntGaugeVec,
    LabelsArg,
    StateSet,
    StateSetVec,
    Summary,
    SummaryVec,
    const_label_pairs,
)
from ..registry import Collector, Registry

#: Constant labels as a ``{name: value}`` dict, ``(name, value)`` pairs, or None.
Labels = LabelsArg
#: A ``(name, value)`` label pair list, as the hierarchy computes auto labels.
LabelPairs = list[tuple[str, str]]

_M = TypeVar("_M", bound=Collector)


class Metrics:
    """The ``create_*`` facade of one hierarchy node (see the module docstring).

    ``registry`` is the node's :class:`Registry`; ``auto_labels()`` returns the
    labels the node adds to every metric it creates (it may raise
    :class:`InvalidNameError` for a hierarchy name that cannot be sanitised).

    Errors: :class:`InvalidLabelsError` for duplicate or reserved label keys,
    :class:`InvalidNameError` for a name or hierarchy name that cannot be
    sanitised, the validation errors of the metric types, and
    :class:`RegistrationError` subclasses (message prefixed ``Failed to
    register metric:``) when this node already has the metric.
    """

    __slots__ = ("_registry", "_auto_labels", "_max_children")

    def __init__(
        self,
        registry: Registry,
        auto_labels: Callable[[], LabelPairs],
        max_children: Callable[[], Optional[int]] = lambda: None,
    ) -> None:
        self._registry = registry
        self._auto_labels = auto_labels
        # Asked at each create_*vec: the runtime's DYN_METRICS_MAX_CHILDREN default.
        self._max_children = max_children

    def __call__(self) -> "Metrics":
        """This facade itself.

        Nodes expose the facade as a property (Dynamo's binding spelling,
        ``endpoint.metrics.create_counter(...)``); calling it keeps the call
        spelling working too: ``endpoint.metrics().create_counter(...)``.
        """
        return self

    @property
    def registry(self) -> Registry:
        """This node's :class:`Registry`."""
        return self._registry

    def _prepare(
        self, name: str, labels: Labels, label_names: Iterable[str] = ()
    ) -> tuple[str, LabelPairs]:
        """``(full name, auto labels + user labels)``, checked in Dynamo's order."""
        pairs = const_label_pairs(labels)
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidLabelsError(f"Duplicate label key '{key}' found in labels")
            seen.add(key)
        try:
            full_name = names.build_component_metric_name(name)
        except InvalidNameError as exc:
            raise InvalidNameError(f"{exc} (got {name!r})") from exc
        for key, _ in pairs:
            if key in names.AUTO_LABEL_NAMES:
                raise InvalidLabelsError(
                    f"Label '{key}' is automatically added by auto-label injection "
                    "and cannot be manually set"
                )
        for key in label_names:
            if key in names.AUTO_LABEL_NAMES:
                raise InvalidLabelsError(
                    f"Variable label name '{key}' conflicts with auto-injected const "
                    "label and cannot be used"
                )
        return full_name, self._auto_labels() + pairs

    def _prepare_vec(
        self, kind: type, name: str, label_names: Iterable[str], const_labels: Labels
    ) -> tuple[str, tuple[str, ...], LabelPairs]:
        """As :meth:`_prepare`, plus the variable label names a ``kind`` Vec requires."""
        if isinstance(label_names, str):
            raise InvalidLabelsError(
                f"label names must be a sequence of strings, got the string {label_names!r}"
            )
        # A tuple first: an iterator would be used up by the checks below.
        variable = tuple(label_names or ())
        full_name, const = self._prepare(name, const_labels, variable)
        if not variable:
            raise InvalidLabelsError(
                f"{kind.__name__} requires const_labels parameter "
                f"(the variable label names), got {variable!r}"
            )
        return full_name, variable, const

    def _register(self, metric: _M) -> _M:
        try:
            self._registry.register(metric)
        except RegistrationError as exc:
            err = type(exc)(f"Failed to register metric: {exc}")
            err.__dict__.update(exc.__dict__)
            raise err from exc
        return metric

    def create_counter(
        self, name: str, help: str, labels: Labels = (), *, unit: str = ""
    ) -> Counter:
        """A :class:`Counter` registered on this node."""
        full_name, const = self._prepare(name, labels)
        return self._register(Counter(full_name, help, const, unit=unit))

    def create_intcounter(
        self, name: str, help: str, labels: Labels = (), *, unit: str = ""
    ) -> IntCounter:
        """An :class:`IntCounter` registered on this node."""
        full_name, const = self._prepare(name, labels)
        return self._register(IntCounter(full_name, help, const, unit=unit))

    def create_gauge(self, name: str, help: str, labels: Labels = (), *, unit: str = "") -> Gauge:
        """A :class:`Gauge` registered on this node."""
        full_name, const = self._prepare(name, labels)
        return self._register(Gauge(full_name, help, const, unit=unit))

    def create_intgauge(
        self, name: str, help: str, labels: Labels = (), *, unit: str = ""
    ) -> IntGauge:
        """An :class:`IntGauge` registered on this node."""
        full_name, const = self._prepare(name, labels)
        return self._register(IntGauge(full_name, help, const, unit=unit))

    def create_histogram(
        self,
        name: str,
        help: str,
        labels: Labels = (),
        buckets: Optional[Iterable[float]] = None,
        *,
        unit: str = "",
        native: bool = False,
        schema: int = DEFAULT_SCHEMA,
        zero_threshold: float = DEFAULT_ZERO_THRESHOLD,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> Histogram:
        """A :class:`Histogram` registered on this node (default buckets if None).

        ``native=True, schema=3, zero_threshold=2**-128, max_buckets=160`` as for
        :class:`Histogram` make it a native histogram.
        """
        full_name, const = self._prepare(name, labels)
        return self._register(
            Histogram(
                full_name,
                help,
                const,
                buckets=buckets,
                unit=unit,
                native=native,
                schema=schema,
                zero_threshold=zero_threshold,
                max_buckets=max_buckets,
            )
        )

    def create_countervec(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: Labels = (),
        *,
        unit: str = "",
    ) -> CounterVec:
        """A :class:`CounterVec` with variable ``label_names``."""
        full_name, variable, const = self._prepare_vec(CounterVec, name, label_names, const_labels)
        return self._register(
            CounterVec(
                full_name, help, variable, const, max_children=self._max_children(), unit=unit
            )
        )

    def create_intcountervec(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: Labels = (),
        *,
        unit: str = "",
    ) -> IntCounterVec:
        """An :class:`IntCounterVec` with variable ``label_names``."""
        full_name, variable, const = self._prepare_vec(
            IntCounterVec, name, label_names, const_labels
        )
        return self._register(
            IntCounterVec(
                full_name, help, variable, const, max_children=self._max_children(), unit=unit
            )
        )

    def create_gaugevec(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: Labels = (),
        *,
        unit: str = "",
    ) -> GaugeVec:
        """A :class:`GaugeVec` with variable ``label_names``."""
        full_name, variable, const = self._prepare_vec(GaugeVec, name, label_names, const_labels)
        return self._register(
            GaugeVec(full_name, help, variable, const, max_children=self._max_children(), unit=unit)
        )

    def create_intgaugevec(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: Labels = (),
        *,
        unit: str = "",
    ) -> IntGaugeVec:
        """An :class:`IntGaugeVec` with variable ``label_names``."""
        full_name, variable, const = self._prepare_vec(IntGaugeVec, name, label_names, const_labels)
        return self._register(
            IntGaugeVec(
                full_name, help, variable, const, max_children=self._max_children(), unit=unit
            )
        )

    def create_histogramvec(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: Labels = (),
        buckets: Optional[Iterable[float]] = None,
        *,
        unit: str = "",
        native: bool = False,
        schema: int = DEFAULT_SCHEMA,
        zero_threshold: float = DEFAULT_ZERO_THRESHOLD,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> HistogramVec:
        """A :class:`HistogramVec` with variable ``label_names`` (``native`` as for
        :meth:`create_histogram`)."""
        full_name, variable, const = self._prepare_vec(
            HistogramVec, name, label_names, const_labels
        )
        return self._register(
            HistogramVec(
                full_name,
                help,
                variable,
                const,
                buckets=buckets,
                max_children=self._max_children(),
                unit=unit,
                native=native,
                schema=schema,
                zero_threshold=zero_threshold,
                max_buckets=max_buckets,
            )
        )

    def create_summary(
        self,
        name: str,
        help: str,
        labels: Labels = (),
        objectives: Optional[Mapping[float, float]] = None,
        max_age: float = 600.0,
        age_buckets: int = 5,
        *,
        unit: str = "",
    ) -> Summary:
        """A :class:`Summary` registered on this node (no quantiles unless ``objectives``)."""
        full_name, const = self._prepare(name, labels)
        return self._register(
            Summary(full_name, help, const, objectives, max_age, age_buckets, unit=unit)
        )

    def create_summaryvec(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: Labels = (),
        objectives: Optional[Mapping[float, float]] = None,
        max_age: float = 600.0,
        age_buckets: int = 5,
        unit: str = "",
    ) -> SummaryVec:
        """A :class:`SummaryVec` with variable ``label_names`` (api.md's signature)."""
        full_name, variable, const = self._prepare_vec(SummaryVec, name, label_names, const_labels)
        return self._register(
            SummaryVec(
                full_name,
                help,
                variable,
                const,
                objectives,
                max_age,
                age_buckets,
                max_children=self._max_children(),
                unit=unit,
            )
        )

    def create_info(self, name: str, help: str, labels: Labels = (), *, unit: str = "") -> Info:
        """An :class:`Info` registered on this node (family ``<prefixed name>_info``)."""
        full_name, const = self._prepare(name, labels)
        return self._register(Info(full_name, help, const, unit=unit))

    def create_infovec(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        const_labels: Labels = (),
        *,
        unit: str = "",
    ) -> InfoVec:
        """An :class:`InfoVec` with variable ``label_names``."""
        full_name, variable, const = self._prepare_vec(InfoVec, name, label_names, const_labels)
        return self._register(
            InfoVec(full_name, help, variable, const, max_children=self._max_children(), unit=unit)
        )

    def create_stateset(
        self, name: str, help: str, states: Iterable[str], labels: Labels = (), *, unit: str = ""
    ) -> StateSet:
        """A :class:`StateSet` registered on this node; its state label is the prefixed name."""
        full_name, const = self._prepare(name, labels)
        return self._register(StateSet(full_name, help, states, const, unit=unit))

    def create_statesetvec(
        self,
        name: str,
        help: str,
        label_names: Iterable[str],
        states: Iterable[str],
        const_labels: Labels = (),
        *,
        unit: str = "",
    ) -> StateSetVec:
        """A :class:`StateSetVec` with variable ``label_names``."""
        full_name, variable, const = self._prepare_vec(StateSetVec, name, label_names, const_labels)
        return self._register(
            StateSetVec(
                full_name,
                help,
                variable,
                states,
                const,
                max_children=self._max_children(),
                unit=unit,
            )
        )

    def register_prometheus_update_callback(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` before every scrape of this node or an ancestor.

        An exception is logged and never aborts the scrape.
        """
        self._registry.add_update_callback(callback)

    def register_prometheus_expfmt_callback(self, callback: Callable[[], str]) -> None:
        """Append ``callback()``'s text to scrapes of this node and its ancestors.

        The text (text format 0.0.4) is appended verbatim after the native
        metrics; an exception or a non-``str`` result is logged and adds nothing.
        """
        self._registry.add_expfmt_callback(callback)

    # The name of Dynamo's older Python binding.
    register_callback = register_prometheus_update_callback

    def prometheus_expfmt(self) -> str:
        """Text 0.0.4 of this node and every descendant, in Dynamo's bytes."""
        return self._registry.prometheus_expfmt()
