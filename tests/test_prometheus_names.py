"""Tests for dyn_metrics.prometheus_names: inventory, validators, sanitisers, const labels."""

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dyn_metrics import prometheus_names as pn
from dyn_metrics.errors import InvalidLabelsError, InvalidNameError

LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ERR = InvalidNameError  # marks an error row in the sanitiser tables


def _only_invalid(raw, kind):
    return (
        f"Input '{raw}' contains only invalid characters and cannot be sanitized "
        f"into a valid Prometheus {kind}"
    )


# --- inventory ---------------------------------------------------------------

# Constants per namespace (nested ones listed separately); a dropped constant fails.
INVENTORY = {
    "name_prefix": 10,
    "labels": 9,
    "component_names": 1,
    "frontend_service": 51,
    "frontend_service.operation": 2,
    "frontend_service.migration_type": 2,
    "frontend_service.status": 2,
    "frontend_service.request_type": 2,
    "frontend_service.admission_gate": 3,
    "frontend_service.error_type": 9,
    "work_handler": 16,
    "work_handler.error_types": 7,
    "task_tracker": 6,
    "distributed_runtime": 1,
    "kvbm": 15,
    "router_request": 1,
    "routing_overhead": 7,
    "router": 12,
    "frontend_perf": 15,
    "tokio_perf": 12,
    "kvindexer": 5,
    "request_plane": 4,
    "transport.tcp": 6,
    "transport.nats": 1,
    "kvrouter": 1,
    "kv_publisher": 5,
    "trtllm_additional": 10,
    "kvstats": 2,
    "model_info": 1,
}

SPOT_CHECKS = [
    ("name_prefix.COMPONENT", "dynamo_component"),
    ("name_prefix.ROUTING_OVERHEAD", "dynamo_routing_overhead"),
    ("labels.WORKER_ID", "worker_id"),
    ("labels.ROUTER_ID", "router_id"),
    ("frontend_service.METRICS_PREFIX_ENV", "DYN_METRICS_PREFIX"),
    (
        "frontend_service.MODEL_MIGRATION_MAX_SEQ_LEN_EXCEEDED_TOTAL",
        "model_migration_max_seq_len_exceeded_total",
    ),
    ("frontend_service.status.SUCCESS", "success"),
    ("frontend_service.error_type.NONE", ""),  # empty string means "no error"
    ("frontend_service.error_type.OVERLOAD", "overload"),
    ("work_handler.error_types.PUBLISH_FINAL", "publish_final"),
    ("router_request.METRIC_PREFIX", "router_"),
    ("routing_overhead.SHARED_CACHE_ERRORS_TOTAL", "shared_cache_errors_total"),
    ("transport.tcp.SERVER_QUEUE_DEPTH", "tcp_server_queue_depth"),
    ("transport.nats.ERRORS_TOTAL", "nats_errors_total"),
    ("kv_publisher.ZMQ_SUSPICIOUS_EVENTS_TOTAL", "kv_publisher_zmq_suspicious_events_total"),
    ("model_info.LOAD_TIME_SECONDS", "model_load_time_seconds"),
]


def test_iter_constants_matches_inventory():
    counts = {}
    for path, _ in pn.iter_constants():
        namespace = path.rsplit(".", 1)[0]
        counts[namespace] = counts.get(namespace, 0) + 1
    assert counts == INVENTORY
    assert sum(counts.values()) == 218


def test_iter_constants_paths_are_unique_and_values_are_str():
    pairs = list(pn.iter_constants())
    assert len({path for path, _ in pairs}) == len(pairs)
    assert all(isinstance(value, str) for _, value in pairs)


def test_iter_constants_keeps_declaration_order():
    paths = [path for path, _ in pn.iter_constants()]
    assert paths[0] == "name_prefix.COMPONENT"
    assert paths[-1] == "model_info.LOAD_TIME_SECONDS"
    assert paths.index("frontend_service.error_type.NONE") + 1 == paths.index(
        "frontend_service.error_type.VALIDATION"
    )
    tops = list(dict.fromkeys(path.split(".")[0] for path in paths))
    assert tops == list(pn.MODULES)


def test_modules_lists_the_21_top_level_namespaces():
    assert len(pn.MODULES) == 21
    assert all(isinstance(getattr(pn, name), type) for name in pn.MODULES)


@pytest.mark.parametrize("path, expected", SPOT_CHECKS)
def test_constant_spot_check(path, expected):
    obj = pn
    for part in path.split("."):
        obj = getattr(obj, part)
    assert obj == expected
    assert (path, expected) in set(pn.iter_constants())


def test_constants_values_are_lowercase_name_parts():
    # Every non-empty constant outside the env-var name can appear in a metric or label.
    for path, value in pn.iter_constants():
        if value and path != "frontend_service.METRICS_PREFIX_ENV":
            assert re.fullmatch(r"[a-z0-9_]+", value), path


def test_auto_label_names_are_the_four_reserved_keys():
    assert pn.AUTO_LABEL_NAMES == frozenset(
        {"dynamo_namespace", "dynamo_component", "dynamo_endpoint", "worker_id"}
    )


# --- validators --------------------------------------------------------------

METRIC_NAME_ROWS = [
    ("a", True),
    ("_a", True),
    (":a", True),
    ("a:b_c9", True),
    ("__x", True),
    ("dynamo_component_requests_total", True),
    ("", False),
    ("1a", False),
    ("a-b", False),
    ("a b", False),
    ("é", False),  # ASCII only
    ("aé", False),
    ("a\n", False),  # fullmatch: `$` would accept a trailing newline
]

LABEL_NAME_ROWS = [
    ("a", True),
    ("_a", True),
    ("__a", True),  # rust-prometheus accepts `__` names
    ("A_9", True),
    ("", False),
    (":a", False),
    ("a:b", False),
    ("1bad", False),
    ("bad-name", False),
    ("é", False),
    ("a\n", False),
]


@pytest.mark.parametrize("name, expected", METRIC_NAME_ROWS)
def test_is_valid_metric_name_table(name, expected):
    assert pn.is_valid_metric_name(name) is expected


@pytest.mark.parametrize("name, expected", LABEL_NAME_ROWS)
def test_is_valid_label_name_table(name, expected):
    assert pn.is_valid_label_name(name) is expected


@pytest.mark.parametrize("name, expected", METRIC_NAME_ROWS)
def test_validate_metric_name_raises_rust_prometheus_message(name, expected):
    if expected:
        assert pn.validate_metric_name(name) is None
    else:
        with pytest.raises(InvalidNameError) as info:
            pn.validate_metric_name(name)
        assert str(info.value) == f"'{name}' is not a valid metric name"


@pytest.mark.parametrize("name, expected", LABEL_NAME_ROWS)
def test_validate_label_name_raises_rust_prometheus_message(name, expected):
    if expected:
        assert pn.validate_label_name(name) is None
    else:
        with pytest.raises(InvalidNameError) as info:
            pn.validate_label_name(name)
        assert str(info.value) == f"'{name}' is not a valid label name"


@pytest.mark.parametrize("value", [None, 5, b"abc", ["a"]])
def test_validators_reject_non_str(value):
    assert pn.is_valid_metric_name(value) is False
    assert pn.is_valid_label_name(value) is False
    for validate in (pn.validate_metric_name, pn.validate_label_name):
        with pytest.raises(InvalidNameError, match=f"as str, got {type(value).__name__}"):
            validate(value)
    for sanitize in (pn.sanitize_prometheus_name, pn.sanitize_prometheus_label):
        with pytest.raises(InvalidNameError, match=f"as str, got {type(value).__name__}"):
            sanitize(value)


# --- sanitize_prometheus_name ------------------------------------------------

SANITIZE_NAME_ROWS = [
    # upstream vectors (spec 2.4)
    ("valid_name", "valid_name"),
    ("test123", "test123"),
    ("test_name_123", "test_name_123"),
    ("test:name", "test:name"),
    ("test name", "test_name"),
    ("test.name", "test_name"),
    ("test@name", "test_name"),
    ("test-name", "test_name"),
    ("test$name#123", "test_name_123"),
    ("test__name", "test__name"),
    ("test___name", "test___name"),
    ("__test", "__test"),
    ("123test", "_123test"),
    ("@test", "_test"),
    ("-test", "_test"),
    (".test", "_test"),
    ("", ERR),
    ("123.test-name@domain", "_123_test_name_domain"),
    ("@#$%", ERR),
    ("!!!!", ERR),
    # derived vectors (spec 2.5)
    (":test", "_:test"),  # quirk: a leading colon is legal but Dynamo still prepends `_`
    ("::", "_::"),  # quirk: same rule; colons alone are not "only invalid characters"
    ("a", "a"),
    ("_a", "_a"),
    ("_", ERR),
    ("__", ERR),
    ("-", ERR),
    ("1", "_1"),
    ("é", ERR),  # one code point -> one `_` -> only underscores
    ("aé", "a_"),
    ("日本", ERR),
    ("Ünïcode", "_n_code"),
    ("a:b:c", "a:b:c"),
    ("abc.def", "abc_def"),
    ("tab\tx", "tab_x"),
    ("x y z", "x_y_z"),
    ("___x", "___x"),  # names keep any number of leading underscores
]


@pytest.mark.parametrize("raw, expected", SANITIZE_NAME_ROWS)
def test_sanitize_prometheus_name_table(raw, expected):
    if expected is ERR:
        with pytest.raises(InvalidNameError) as info:
            pn.sanitize_prometheus_name(raw)
        if raw == "":
            assert str(info.value) == "Cannot sanitize empty string into valid Prometheus name"
        else:
            assert str(info.value) == _only_invalid(raw, "name")
    else:
        assert pn.sanitize_prometheus_name(raw) == expected


@given(st.text())
@example("")
@example(":x")
@example("é")
def test_sanitize_prometheus_name_output_is_valid_or_raises(raw):
    try:
        result = pn.sanitize_prometheus_name(raw)
    except InvalidNameError:
        return
    assert pn.is_valid_metric_name(result)


@given(st.text())
@example(":x")
@example("___a")
def test_sanitize_prometheus_name_is_idempotent(raw):
    try:
        once = pn.sanitize_prometheus_name(raw)
    except InvalidNameError:
        return
    assert pn.sanitize_prometheus_name(once) == once


# --- sanitize_prometheus_label -----------------------------------------------

SANITIZE_LABEL_ROWS = [
    # upstream vectors (spec 2.4)
    ("valid_label", "valid_label"),
    ("test123", "test123"),
    ("test_label_123", "test_label_123"),
    ("test:label", "test_label"),
    ("test label", "test_label"),
    ("test.label", "test_label"),
    ("test@label", "test_label"),
    ("test-label", "test_label"),
    ("test$label#123", "test_label_123"),
    ("test__label", "test__label"),
    ("test___label", "test___label"),
    ("test____label", "test____label"),
    ("__test", "test"),
    ("____", ERR),
    ("123test", "_123test"),
    ("@test", "_test"),
    (":test", "_test"),
    ("-test", "_test"),
    ("", ERR),
    ("123:test-label@domain", "_123_test_label_domain"),
    ("@#$%", ERR),
    ("!!!!", ERR),
    ("@@123", "_123"),  # upstream integration test, via the namespace auto-label
    # derived vectors (spec 2.5)
    ("___a", "__a"),  # quirk: strips two `_`, re-adds one because `_` is not a letter
    ("____a", "___a"),  # quirk: same rule, one more underscore
    ("__1", "_1"),
    ("__a", "a"),
    ("__9abc", "_9abc"),
    ("_a", "_a"),
    ("_1", "_1"),
    ("_9", "_9"),
    ("_", ERR),
    ("__", ERR),
    ("___", ERR),
    (":", ERR),
    ("a:b", "a_b"),
    ("x:y:z", "x_y_z"),
    ("ns-1", "ns_1"),
    ("test-component", "test_component"),
    ("9abc", "_9abc"),
    ("1_a", "_1_a"),
    ("@a", "_a"),
    ("@@a", "a"),  # `@@` becomes `__`, which is then stripped
    ("-_a", "a"),  # same: `-_` becomes `__`
    ("é", ERR),
    ("a-é", "a__"),
    ("a__", "a__"),
]


@pytest.mark.parametrize("raw, expected", SANITIZE_LABEL_ROWS)
def test_sanitize_prometheus_label_table(raw, expected):
    if expected is ERR:
        with pytest.raises(InvalidNameError) as info:
            pn.sanitize_prometheus_label(raw)
        if raw == "":
            assert str(info.value) == "Cannot sanitize empty string into valid Prometheus label"
        else:
            assert str(info.value) == _only_invalid(raw, "label")
    else:
        assert pn.sanitize_prometheus_label(raw) == expected


@given(st.text())
@example("@@123")
@example("___a")
def test_sanitize_prometheus_label_output_matches_label_charset(raw):
    try:
        result = pn.sanitize_prometheus_label(raw)
    except InvalidNameError:
        return
    assert LABEL_RE.fullmatch(result)


# The label sanitiser is NOT idempotent: the `__` strip leaves `__` in front whenever three
# or more underscores led, and a second pass strips again. No input shorter than 4 code points
# does this (checked exhaustively); these are smallest cases, each pass shown.
LABEL_NOT_IDEMPOTENT_ROWS = [
    ("___a", ["__a", "a"]),
    ("___1", ["__1", "_1"]),
    ("__:a", ["__a", "a"]),  # the invalid char becomes the third `_`
    ("@__a", ["__a", "a"]),
    ("__éa", ["__a", "a"]),
    ("____a", ["___a", "__a", "a"]),  # one underscore lost per pass until it settles
]


@pytest.mark.parametrize("raw, passes", LABEL_NOT_IDEMPOTENT_ROWS)
def test_sanitize_prometheus_label_repeated_passes_change_result(raw, passes):
    value = raw
    for expected in passes:
        value = pn.sanitize_prometheus_label(value)
        assert value == expected
    assert pn.sanitize_prometheus_label(value) == value  # finally stable


# What is true: sanitize(sanitize(x)) == sanitize(x) exactly when sanitize(x) does not
# start with `__` (an output starting with `__` always changes on the next pass).
@given(st.text())
@example("___a")
@example("__a")
@example("@@123")
def test_sanitize_prometheus_label_idempotent_unless_result_starts_with_dunder(raw):
    try:
        once = pn.sanitize_prometheus_label(raw)
    except InvalidNameError:
        return
    twice = pn.sanitize_prometheus_label(once)
    assert (twice == once) is (not once.startswith("__"))


# --- sanitize_frontend_prometheus_prefix -------------------------------------

FRONTEND_PREFIX_ROWS = [
    # upstream vectors (spec 2.4)
    ("dynamo_frontend", "dynamo_frontend"),
    ("custom_prefix", "custom_prefix"),
    ("test123", "test123"),
    ("test prefix", "test_prefix"),
    ("test.prefix", "test_prefix"),
    ("test@prefix", "test_prefix"),
    ("test-prefix", "test_prefix"),
    ("123test", "_123test"),
    ("@test", "_test"),
    ("", "dynamo_frontend"),
    # derived vectors (spec 2.5)
    ("_", "dynamo_frontend"),  # unsanitisable falls back to the default, never raises
    ("@#$%", "dynamo_frontend"),
    (":x", "_:x"),  # quirk: the name sanitiser's leading-colon rule
]


@pytest.mark.parametrize("raw, expected", FRONTEND_PREFIX_ROWS)
def test_sanitize_frontend_prometheus_prefix_table(raw, expected):
    assert pn.sanitize_frontend_prometheus_prefix(raw) == expected


# --- build_component_metric_name ---------------------------------------------

BUILD_COMPONENT_ROWS = [
    # upstream vectors (spec 2.4)
    ("test_metric", "dynamo_component_test_metric"),
    ("requests_total", "dynamo_component_requests_total"),
    ("test metric", "dynamo_component_test_metric"),
    ("test.metric", "dynamo_component_test_metric"),
    ("test@metric", "dynamo_component_test_metric"),
    ("123metric", "dynamo_component__123metric"),
    ("requests", "dynamo_component_requests"),
    ("counter", "dynamo_component_counter"),
    ("@#$%", ERR),  # Dynamo panics here
    ("", ERR),
    # derived vectors (spec 2.5)
    ("__x", "dynamo_component___x"),
    (":x", "dynamo_component__:x"),  # quirk: `_:x` after the name sanitiser
]


@pytest.mark.parametrize("raw, expected", BUILD_COMPONENT_ROWS)
def test_build_component_metric_name_table(raw, expected):
    if expected is ERR:
        with pytest.raises(InvalidNameError) as info:
            pn.build_component_metric_name(raw)
        assert str(info.value) == "metric name should be valid or sanitizable"
        assert isinstance(info.value.__cause__, InvalidNameError)
    else:
        assert pn.build_component_metric_name(raw) == expected


# --- clamp_u64_to_i64 --------------------------------------------------------

CLAMP_ROWS = [
    (0, 0),
    (100, 100),
    (1000000, 1000000),
    (9223372036854775807, 9223372036854775807),
    (18446744073709551615, 9223372036854775807),
    (9223372036854775808, 9223372036854775807),
    (9223372036854776807, 9223372036854775807),
]


@pytest.mark.parametrize("value, expected", CLAMP_ROWS)
def test_clamp_u64_to_i64_table(value, expected):
    assert pn.clamp_u64_to_i64(value) == expected


# --- parse_const_labels (DYN_METRICS_CONST_LABELS) ---------------------------

CONST_LABELS_OK_ROWS = [
    # upstream vectors (spec 6.3)
    (
        " cluster=us-west-2, team = search ,, env=prod ",
        {"cluster": "us-west-2", "team": "search", "env": "prod"},
    ),
    ("", {}),
    (" , ", {}),
    ("k=a=b", {"k": "a=b"}),  # only the first `=` splits
    # derived
    (None, {}),  # unset variable
    ("k=", {"k": ""}),  # an empty value is kept as given
]

# (input, message fragment): the fragment names the offending item or name.
CONST_LABELS_ERR_ROWS = [
    # upstream vectors (spec 6.3)
    ("novalue", "expected 'name=value' in const labels, got 'novalue'"),
    ("=empty_name", "expected a label name before '=' in '=empty_name'"),
    ("1bad=x", "got '1bad'"),
    ("bad-name=x", "got 'bad-name'"),
    ("__reserved=x", "not starting with '__' in '__reserved=x'"),  # charset is fine; `__` is not
    ("dynamo_namespace=x", "other than the auto-labels"),
    ("dynamo_component=x", "other than the auto-labels"),
    ("dynamo_endpoint=x", "other than the auto-labels"),
    ("worker_id=1", "other than the auto-labels"),
    ("dup=1,dup=2", "got 'dup' again in 'dup=2'"),
    ("ok=1,broken", "got 'broken'"),  # one bad item rejects the whole value
]


@pytest.mark.parametrize("text, expected", CONST_LABELS_OK_ROWS)
def test_parse_const_labels_table(text, expected):
    assert pn.parse_const_labels(text) == expected


@pytest.mark.parametrize("text, fragment", CONST_LABELS_ERR_ROWS)
def test_parse_const_labels_rejects(text, fragment):
    with pytest.raises(InvalidLabelsError) as info:
        pn.parse_const_labels(text)
    assert fragment in str(info.value)


def test_parse_const_labels_rejects_non_str():
    with pytest.raises(InvalidLabelsError, match="as str, got int"):
        pn.parse_const_labels(5)
