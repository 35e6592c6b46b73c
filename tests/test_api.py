"""The public surface of ``import dyn_metrics as dm`` (``shared/spec/api.md``)."""

import subprocess
import sys

import dyn_metrics as dm
from dyn_metrics.dynamo.config import SystemConfig

API_NAMES = [
    # hierarchy and facade
    "DistributedRuntime",
    "Namespace",
    "Component",
    "Endpoint",
    "Metrics",
    # metric types
    "Counter",
    "IntCounter",
    "Gauge",
    "IntGauge",
    "Histogram",
    "CounterVec",
    "IntCounterVec",
    "GaugeVec",
    "IntGaugeVec",
    "HistogramVec",
    "DEFAULT_BUCKETS",
    "linear_buckets",
    "exponential_buckets",
    "Registry",
    # names, server, formats
    "prometheus_names",
    "start_http_server",
    "parse",
    "check",
    "CheckResult",
    "Problem",
    # errors
    "MetricsError",
    "InvalidNameError",
    "InvalidLabelsError",
    "CardinalityError",
    "InvalidBucketsError",
    "InvalidValueError",
    "RegistrationError",
    "AlreadyRegisteredError",
    "DescriptorConflictError",
    "ParseError",
    "ConfigError",
]

FACADE_METHODS = [
    "create_counter",
    "create_gauge",
    "create_histogram",
    "create_intcounter",
    "create_intgauge",
    "create_countervec",
    "create_gaugevec",
    "create_histogramvec",
    "create_intcountervec",
    "create_intgaugevec",
    "register_prometheus_update_callback",
    "register_prometheus_expfmt_callback",
    "prometheus_expfmt",
]


def test_api_every_contract_name_is_exported():
    missing = [name for name in API_NAMES if not hasattr(dm, name)]
    assert not missing
    assert set(API_NAMES) <= set(dm.__all__)
    assert set(dm.__all__) <= set(dir(dm))


def test_api_facade_has_every_create_method():
    m = dm.DistributedRuntime(config=SystemConfig()).metrics()
    assert [name for name in FACADE_METHODS if not callable(getattr(m, name, None))] == []


def test_api_input_errors_are_value_errors():
    for name in (
        "InvalidNameError",
        "InvalidLabelsError",
        "CardinalityError",
        "InvalidBucketsError",
        "InvalidValueError",
        "ParseError",
        "ConfigError",
    ):
        cls = getattr(dm, name)
        assert issubclass(cls, dm.MetricsError) and issubclass(cls, ValueError), name
    assert issubclass(dm.AlreadyRegisteredError, dm.RegistrationError)
    assert issubclass(dm.DescriptorConflictError, dm.RegistrationError)


def test_api_parse_and_check_stay_functions_after_their_modules_are_imported():
    from dyn_metrics.exposition import check as checker  # noqa: F401
    from dyn_metrics.exposition.parse import reader as parser  # noqa: F401  (the modules behind them)

    assert callable(dm.parse) and dm.parse is parser.parse
    assert callable(dm.check) and dm.check is checker.check


def test_api_import_loads_no_server_parser_or_checker():
    # They are loaded on first use, which keeps `import dyn_metrics` cheap.
    code = (
        "import sys, dyn_metrics\n"
        "heavy = [m for m in ('dyn_metrics.server.app', 'dyn_metrics.exposition.parse.reader', "
        "'dyn_metrics.exposition.check', 'urllib.request', 'ssl', 'logging', 'json') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert out == ""


def test_lazy_logger_logs_through_the_named_logger_once_used(caplog):
    log = dm.errors.LazyLogger("dyn_metrics.test_lazy")
    with caplog.at_level("WARNING", logger="dyn_metrics.test_lazy"):
        log.warning("value %r refused", 3)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("dyn_metrics.test_lazy", "WARNING", "value 3 refused")
    ]
    assert log.name == "dyn_metrics.test_lazy"  # any attribute is the logger's
