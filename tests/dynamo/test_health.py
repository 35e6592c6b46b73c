"""SystemHealth: the decision rules of Dynamo's system_health.rs, as a table."""

import json
import logging
import threading

import pytest

from dyn_metrics.dynamo.config import SystemConfig
from dyn_metrics.dynamo.health import ReadinessHold, SystemHealth, render_json
from dyn_metrics.errors import InvalidValueError

EP = "generate"


def _apply(health, ops):
    holds = {}
    for op, *args in ops:
        if op == "target":
            health.register_health_check_target(*args)
        elif op == "registered":
            health.endpoint_registered(*args)
        elif op == "set":
            health.set_endpoint_status(*args)
        elif op == "status":
            health.set_status(*args)
        elif op == "hold":
            holds[args[0]] = health.hold(args[0])
        elif op == "release":
            holds[args[0]].release()
        else:
            raise AssertionError(op)


# (id, constructor kwargs, operations, healthy, endpoints in the body)
RULES = [
    # rule 5: the process-wide status
    ("default_notready", {}, [], False, {}),
    ("starting_ready", {"starting_status": "ready"}, [], True, {}),
    ("starting_bool", {"starting_status": True}, [], True, {}),
    ("set_status", {}, [("status", True)], True, {}),
    ("set_status_back", {"starting_status": "ready"}, [("status", False)], False, {}),
    # upstream: registration without a target is ignored by the decision (the 503 bug guard)
    ("registered_without_target", {}, [("registered", EP)], False, {EP: "ready"}),
    (
        "registered_without_target_then_status",
        {},
        [("registered", EP), ("status", True)],
        True,
        {EP: "ready"},
    ),
    # rule 3: health-check targets
    ("target_only", {}, [("target", EP)], False, {EP: "notready"}),
    ("target_registered_canary_off", {}, [("target", EP), ("registered", EP)], True, {EP: "ready"}),
    (
        "target_beats_ready_status",
        {"starting_status": "ready"},
        [("target", EP)],
        False,
        {EP: "notready"},
    ),
    ("target_keeps_existing_status", {}, [("set", EP, True), ("target", EP)], True, {EP: "ready"}),
    (
        "targets_ignore_non_targets",
        {"canary_enabled": True},
        [("target", "a"), ("set", "a", True), ("set", "b", False)],
        True,
        {"a": "ready", "b": "notready"},
    ),
    # canary: a target waits for the canary
    (
        "canary_target_registered",
        {"canary_enabled": True},
        [("target", EP), ("registered", EP)],
        False,
        {EP: "notready"},
    ),
    (
        "canary_target_verified",
        {"canary_enabled": True},
        [("target", EP), ("registered", EP), ("set", EP, True)],
        True,
        {EP: "ready"},
    ),
    # rule 4: canary on, no targets
    (
        "canary_payloadless_registered",
        {"canary_enabled": True},
        [("registered", EP)],
        True,
        {EP: "ready"},
    ),
    (
        "canary_one_of_two_not_ready",
        {"canary_enabled": True},
        [("registered", "a"), ("set", "b", False)],
        False,
        {"a": "ready", "b": "notready"},
    ),
    ("canary_no_endpoints_falls_to_status", {"canary_enabled": True}, [], False, {}),
    (
        "canary_no_endpoints_ready_status",
        {"canary_enabled": True, "starting_status": "ready"},
        [],
        True,
        {},
    ),
    # rule 1: holds
    (
        "hold_blocks_registration",
        {},
        [("hold", EP), ("target", EP), ("registered", EP)],
        False,
        {EP: "notready"},
    ),
    ("hold_beats_ready_status", {"starting_status": "ready"}, [("hold", EP)], False, {}),
    (
        "hold_sibling_cannot_report_ready",
        {"canary_enabled": True},
        [("hold", EP), ("registered", EP), ("registered", "rl_system")],
        False,
        {"rl_system": "ready"},
    ),
    (
        "hold_released_then_registered",
        {"canary_enabled": True},
        [("hold", EP), ("registered", EP), ("release", EP), ("registered", EP)],
        True,
        {EP: "ready"},
    ),
    (
        "hold_released_not_yet_registered",
        {"canary_enabled": True},
        [("hold", EP), ("registered", EP), ("registered", "x"), ("release", EP)],
        True,
        {"x": "ready"},
    ),
    (
        "hold_does_not_suppress_sibling_flag",
        {},
        [("hold", EP), ("registered", "other")],
        False,
        {"other": "ready"},
    ),
    # rule 2: use_endpoint_health_status
    (
        "listed_start_ready",
        {"starting_status": "ready", "use_endpoint_health_status": [EP]},
        [],
        True,
        {EP: "ready"},
    ),
    ("listed_start_notready", {"use_endpoint_health_status": [EP]}, [], False, {EP: "notready"}),
    (
        "listed_registered",
        {"use_endpoint_health_status": [EP]},
        [("registered", EP)],
        True,
        {EP: "ready"},
    ),
    (
        "listed_canary_starts_notready",
        {"starting_status": "ready", "use_endpoint_health_status": [EP], "canary_enabled": True},
        [],
        False,
        {EP: "notready"},
    ),
    (
        "listed_all_must_be_ready",
        {"use_endpoint_health_status": ["a", "b"]},
        [("set", "a", True)],
        False,
        {"a": "ready", "b": "notready"},
    ),
    (
        "listed_beats_targets",
        {"starting_status": "ready", "use_endpoint_health_status": ["a"]},
        [("target", "b")],
        True,
        {"a": "ready", "b": "notready"},
    ),
    (
        "listed_beats_status",
        {"use_endpoint_health_status": ["a"]},
        [("status", True)],
        False,
        {"a": "notready"},
    ),
]


@pytest.mark.parametrize(
    "kwargs, ops, healthy, endpoints", [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_health_decision_rules(kwargs, ops, healthy, endpoints):
    health = SystemHealth(**kwargs)
    _apply(health, ops)
    got_healthy, body = health.snapshot()
    assert got_healthy is healthy
    assert body["status"] == ("ready" if healthy else "notready")
    assert body["endpoints"] == endpoints


def test_health_snapshot_body_shape_and_uptime():
    health = SystemHealth()
    _, first = health.snapshot()
    _, second = health.snapshot()
    assert set(first) == {"endpoints", "status", "uptime"}
    assert set(first["uptime"]) == {"nanos", "secs"}
    for body in (first, second):
        assert isinstance(body["uptime"]["secs"], int)
        assert 0 <= body["uptime"]["nanos"] < 1_000_000_000
    as_ns = [b["uptime"]["secs"] * 10**9 + b["uptime"]["nanos"] for b in (first, second)]
    assert as_ns[0] <= as_ns[1]
    assert health.uptime_seconds() >= as_ns[1] / 1e9


def test_health_render_json_matches_dynamo_bytes():
    body = {
        "uptime": {"secs": 12, "nanos": 313803539},
        "status": "notready",
        "endpoints": {"generate": "notready"},
    }
    assert render_json(body) == (
        '{"endpoints":{"generate":"notready"},"status":"notready",'
        '"uptime":{"nanos":313803539,"secs":12}}'
    )
    _, snap = SystemHealth().snapshot()
    assert json.loads(render_json(snap)) == snap


def test_health_duplicate_target_is_ignored_with_warning(caplog):
    health = SystemHealth()
    health.register_health_check_target(EP, {"first": 1})
    health.set_endpoint_status(EP, True)
    with caplog.at_level(logging.WARNING, logger="dyn_metrics"):
        health.register_health_check_target(EP, {"second": 2})
    assert health.health_check_targets() == {EP: {"first": 1}}
    assert health.endpoint_status(EP) is True
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert repr(EP) in caplog.records[0].getMessage()


def test_health_hold_context_manager_and_double_release():
    health = SystemHealth(starting_status="ready")
    with health.hold(EP) as hold:
        assert isinstance(hold, ReadinessHold)
        assert health.snapshot()[0] is False
    assert hold.released
    hold.release()  # harmless
    assert health.snapshot()[0] is True


def test_health_holds_are_counted():
    health = SystemHealth(starting_status="ready")
    first, second = health.hold(EP), health.hold(EP)
    first.release()
    first.release()  # releasing the same handle again does not release the other
    assert health.snapshot()[0] is False
    second.release()
    assert health.snapshot()[0] is True


def test_health_from_config():
    config = SystemConfig(
        starting_health_status="ready", use_endpoint_health_status=("a",), health_check_enabled=True
    )
    health = SystemHealth.from_config(config)
    assert health.canary_enabled
    assert health.snapshot()[1]["endpoints"] == {"a": "notready"}  # canary: listed start NotReady
    assert SystemHealth.from_config(SystemConfig()).snapshot()[0] is False


@pytest.mark.parametrize(
    "kwargs, prefix",
    [
        ({"starting_status": "READY"}, "starting_status: expected"),
        ({"starting_status": 1}, "starting_status: expected"),
        ({"use_endpoint_health_status": "generate"}, "use_endpoint_health_status: expected"),
        ({"use_endpoint_health_status": [1]}, "use_endpoint_health_status: expected"),
    ],
)
def test_health_constructor_rejects_bad_arguments(kwargs, prefix):
    with pytest.raises(InvalidValueError, match="^" + prefix):
        SystemHealth(**kwargs)


def test_health_concurrent_updates_and_snapshots():
    health = SystemHealth(canary_enabled=True)
    errors = []

    def writer(i):
        try:
            for n in range(300):
                name = f"ep{i}-{n % 7}"
                health.set_endpoint_status(name, n % 2 == 0)
                with health.hold(name):
                    health.endpoint_registered(name)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader():
        try:
            for _ in range(300):
                healthy, body = health.snapshot()
                assert body["status"] == ("ready" if healthy else "notready")
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    healthy, body = health.snapshot()  # no holds left: rule 4 over the known endpoints
    assert healthy is all(s == "ready" for s in body["endpoints"].values())


@pytest.mark.parametrize(
    "word, ready", [("ready", True), ("notready", False), (True, True), (False, False)]
)
def test_health_setters_take_the_status_words(word, ready):
    health = SystemHealth(starting_status="ready" if not ready else "notready")
    health.set_status(word)
    assert health.snapshot()[0] is ready
    health.set_endpoint_status("generate", word)
    assert health.endpoint_status("generate") is ready


@pytest.mark.parametrize("bad", ["READY", "yes", 1, None])
def test_health_setters_refuse_other_values(bad):
    health = SystemHealth()
    with pytest.raises(InvalidValueError):
        health.set_status(bad)
    with pytest.raises(InvalidValueError):
        health.set_endpoint_status("generate", bad)
