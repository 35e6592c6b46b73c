"""Tests of ``dyn_metrics.collectors``; the helpers the three test modules share."""

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

import dyn_metrics as dm
from dyn_metrics.exposition import openmetrics, text


def client_view(metrics):
    """prometheus_client's metrics as ``[(0.0.4 name, type, help, [(name, labels, value)])]``."""
    out = []
    for m in metrics:
        name = m.name + "_total" if m.type == "counter" else m.name
        samples = [(s.name, tuple(sorted(s.labels.items())), s.value) for s in m.samples]
        out.append((name, m.type, m.documentation, samples))
    return out


def our_view(families):
    """Our families in the shape of :func:`client_view`."""
    return [
        (f.name, f.type, f.help, [(s.name, s.labels, s.value) for s in f.samples]) for f in families
    ]


def shape(view):
    """A view without the values: what must match exactly even for live metrics."""
    return [(n, t, h, [(s, labels) for s, labels, _ in samples]) for n, t, h, samples in view]


def assert_round_trips(families):
    """Both encodings pass our checker and read back through prometheus_client's parsers
    with the families' names, types, HELP, labels and values."""
    assert families
    expected = {f.name: f for f in families}
    for encode, parse, fmt in (
        (text.encode_to_string, parse_text, "text"),
        (openmetrics.encode_to_string, parse_openmetrics, "openmetrics"),
    ):
        body = encode(families)
        result = dm.check(body, format=fmt)
        assert result.errors == [], (fmt, result.errors, body)
        parsed = client_view(parse(body))
        assert [p[0] for p in parsed] == list(expected), (fmt, body)
        for name, type_word, help_text, samples in parsed:
            family = expected[name]
            assert (type_word, help_text) == (family.type, family.help), fmt
            assert samples == [(s.name, s.labels, s.value) for s in family.samples], fmt
