"""The checker over the corpus, against promtool, and its command line.

tests/corpus/MANIFEST.tsv lists every exposition with its format, the
expected verdict (valid / lint / invalid) and, for text 0.0.4 cases, what
promtool 2.42 says. The promtool test asserts that we reject everything
promtool rejects, and pins what we reject that promtool accepts.
"""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import dyn_metrics as dm
from dyn_metrics.exposition.check import CODES, STRICT_LINTS, CheckResult, Problem, check, main

CORPUS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "corpus")


def _manifest():
    with open(os.path.join(CORPUS, "MANIFEST.tsv"), encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


MANIFEST = _manifest()
TEXT_CASES = [row for row in MANIFEST if row["format"] == "text"]


def _read(row):
    with open(os.path.join(CORPUS, row["file"]), "rb") as f:
        return f.read()


def _verdict(result):
    return "invalid" if result.errors else ("lint" if result.warnings else "valid")


# -- corpus ---------------------------------------------------------------------


def test_check_corpus_is_complete():
    files = sorted(f for f in os.listdir(CORPUS) if f != "MANIFEST.tsv")
    assert files == sorted(row["file"] for row in MANIFEST)
    assert len(MANIFEST) >= 60
    for row in MANIFEST:
        assert row["format"] in ("text", "openmetrics")
        assert row["verdict"] in ("valid", "lint", "invalid")
        assert row["file"].endswith(".om" if row["format"] == "openmetrics" else ".prom")
        assert row["reason"]


@pytest.mark.parametrize("row", MANIFEST, ids=[row["file"] for row in MANIFEST])
def test_check_corpus_verdict(row):
    # "lint" counts every lint, the strict ones off by default included.
    result = check(_read(row), row["format"], enable=("all",))
    assert _verdict(result) == row["verdict"], (row["reason"], result)
    # auto-detection: a final # EOF line means OpenMetrics
    ends_in_eof = _read(row).rstrip(b"\n").endswith(b"# EOF")
    assert check(_read(row), "auto").format == ("openmetrics" if ends_in_eof else "text")


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    assert path, (
        "promtool not found: install Debian's prometheus package (apt-get install prometheus)"
    )
    return path


# Syntax newer than promtool 2.42: Prometheus 3's quoted UTF-8 names.
NEWER_THAN_PROMTOOL = {"145-utf8-quoted-names.prom"}


def _promtool_verdict(path, data):
    proc = subprocess.run([path, "check", "metrics"], input=data, capture_output=True, timeout=30)
    return {0: "valid", 1: "invalid", 3: "lint"}[proc.returncode]


def test_check_rejects_everything_promtool_rejects(promtool):
    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(lambda row: _promtool_verdict(promtool, _read(row)), TEXT_CASES))
    missed, changed, stricter = [], [], []
    for row, verdict in zip(TEXT_CASES, verdicts):
        ours = _verdict(check(_read(row), "text"))
        if verdict == "invalid" and ours != "invalid" and row["file"] not in NEWER_THAN_PROMTOOL:
            missed.append(row["file"])
        if verdict != row["promtool"]:
            changed.append((row["file"], row["promtool"], verdict))
        if ours == "invalid" and verdict != "invalid":
            stricter.append(row["file"])
    assert missed == [], "promtool rejects these, the checker does not"
    assert changed == [], "promtool's verdicts differ from the ones recorded in MANIFEST.tsv"
    # The record of what only we catch (the brief's "stricter than promtool").
    recorded = [
        row["file"]
        for row in TEXT_CASES
        if row["verdict"] == "invalid" and row["promtool"] != "invalid"
    ]
    assert stricter == recorded
    assert len(stricter) >= 20


# -- API ---------------------------------------------------------------------------


def test_check_finds_all_problems_sorted_by_line():
    text = 'b 1\nx{a="1"} 1\nx{a="1"} 2\n# TYPE y gaugeish\nx-y 1\nb 2\n'
    result = check(text, "text")
    assert [p.line for p in result.errors] == sorted(p.line for p in result.errors)
    assert {p.line for p in result.errors} == {3, 4, 5, 6}
    assert not result.ok
    assert all(isinstance(p, Problem) for p in result.errors)


def test_check_result_ok_with_warnings_only():
    result = check("# TYPE x counter\nx 1\n", "text")
    assert result.ok and result.errors == []
    assert result.warnings == [
        Problem(1, 'x: counter metrics should have "_total" suffix', "counter-total")
    ]
    assert isinstance(result, CheckResult) and result.format == "text"
    # missing-help is a strict lint: only when enabled
    strict = check("# TYPE x counter\nx 1\n", "text", enable=["missing-help"])
    assert [p.code for p in strict.warnings] == ["missing-help", "counter-total"]


# -- codes, ignore, enable ------------------------------------------------------------


def test_check_codes_table_lists_every_code_the_source_uses():
    import glob
    import re

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "dyn_metrics")
    used = set()
    for path in glob.glob(os.path.join(root, "exposition", "parse", "*.py")) + [
        os.path.join(root, "exposition", "check.py")
    ]:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        calls = r'\.(?:error|warn)\(\s*[^,()]+(?:\([^()]*\))?,\s*"([a-z0-9-]+)"'
        found = r'\(\s*(?:line|sample_line|number),\s*"([a-z0-9-]+)"'
        used |= set(re.findall(calls, source)) | set(re.findall(found, source))
    assert used and used <= set(CODES), sorted(used - set(CODES))
    assert {"dup-series", "missing-inf", "metadata-order", "colon-name", "utf8-name"} <= set(CODES)
    assert STRICT_LINTS == {
        "base-unit",
        "camel-case",
        "colon-mangled",
        "colon-name",
        "metadata-order",
        "missing-help",
    }


IGNORE_ROWS = [
    # (text, format, ignore, enable, error codes, warning codes)
    ('x{a="1"} 1\nx{a="1"} 2\n', "text", (), (), ["dup-series"], []),
    ('x{a="1"} 1\nx{a="1"} 2\n', "text", ("dup-series",), (), [], []),
    ("# TYPE x:y gauge\nx:y 1\n", "text", (), (), [], []),
    ("# TYPE x:y gauge\nx:y 1\n", "text", (), ("colon-name",), [], ["colon-name"]),
    ("# TYPE x:y gauge\nx:y 1\n", "text", (), ("all",), [], ["missing-help", "colon-name"]),
    (
        "# TYPE x:y gauge\nx:y 1\n",
        "text",
        ("missing-help",),
        ("all",),
        [],
        ["colon-name"],
    ),
    ("# TYPE x counter\nx 1\n", "text", ("counter-total",), (), [], []),
]


@pytest.mark.parametrize("text, fmt, ignore, enable, errors, warnings", IGNORE_ROWS)
def test_check_ignore_and_enable_by_code(text, fmt, ignore, enable, errors, warnings):
    result = check(text, fmt, ignore=ignore, enable=enable)
    assert [p.code for p in result.errors] == errors
    assert [p.code for p in result.warnings] == warnings


@pytest.mark.parametrize(
    "kwargs", [{"ignore": ["no-such-code"]}, {"enable": ["Dup-Series"]}, {"ignore": "dup-series"}]
)
def test_check_unknown_code_raises_and_names_it(kwargs):
    with pytest.raises(dm.InvalidValueError) as info:
        check("x 1\n", "text", **kwargs)
    value = next(iter(kwargs.values()))
    assert (repr(value) if isinstance(value, str) else repr(value[0])) in str(info.value)


def test_check_lint_once_per_family_like_promtool():
    text = (
        "# HELP x X.\n# TYPE x gauge\n"
        'x{fooBar="1"} 1\nx{fooBar="2"} 1\nx{fooBar="3"} 1\n'
        "# HELP y Y.\n# TYPE y gauge\n"
        'y{fooBar="1"} 1\ny{fooBar="2"} 1\n'
    )
    result = check(text, "text", enable=["camel-case"])
    assert [(p.line, p.code) for p in result.warnings] == [(3, "camel-case"), (8, "camel-case")]
    # errors are all reported, every line
    dup = check('x{a="1"} 1\nx{a="1"} 2\nx{a="1"} 3\n', "text")
    assert [p.line for p in dup.errors] == [2, 3]


def test_check_auto_detects_openmetrics_by_final_eof():
    assert check("# TYPE x gauge\nx 1\n# EOF\n").format == "openmetrics"
    assert check("x 1\n").format == "text"


def test_check_bytes_must_be_utf8_and_every_bad_line_is_reported():
    result = check(b'x 1\ny{a="\xff"} 1\nz{a="\xfe"} 1\n', "text")
    assert [(p.line, p.message.split(" at ")[0]) for p in result.errors] == [
        (2, "invalid UTF-8"),
        (3, "invalid UTF-8"),
    ]


def test_check_unknown_format_raises():
    with pytest.raises(ValueError):
        check("", "protobuf")


def test_check_valid_input_per_spec_is_never_an_error():
    docs_example = (
        "# HELP http_requests_total The total number of HTTP requests.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{method="post",code="200"} 1027 1395066363000\n'
        'http_requests_total{method="post",code="400"}    3 1395066363000\n'
        "\n"
        "# Escaping in label values:\n"
        'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",'
        'error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9\n'
        "\n"
        "# Minimalistic line:\n"
        "metric_without_timestamp_and_labels 12.47\n"
    )
    assert check(docs_example, "text").errors == []


# -- command line -----------------------------------------------------------------


def _run(argv, stdin=b""):
    out, err = io.StringIO(), io.StringIO()
    fake_stdin = io.TextIOWrapper(io.BytesIO(stdin))
    real = sys.stdin
    sys.stdin = fake_stdin
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        sys.stdin = real
    return code, out.getvalue(), err.getvalue()


def _corpus_path(verdict, fmt="text"):
    row = next(r for r in MANIFEST if r["verdict"] == verdict and r["format"] == fmt)
    return os.path.join(CORPUS, row["file"])


def test_check_main_exit_0_for_valid_file():
    assert _run([_corpus_path("valid")]) == (0, "", "")


def test_check_main_exit_1_prints_line_and_message():
    code, out, _ = _run(["-", "--format", "text"], b'x{a="1"} 1\nx{a="1"} 2\n')
    assert code == 1
    assert out.splitlines() == ['2: duplicate series x{a="1"} (first on line 1) [dup-series]']


def test_check_main_ignore_and_enable_take_comma_separated_codes():
    dup = b'x{a="1"} 1\nx{a="1"} 2\n'
    assert _run(["--ignore", "dup-series"], dup) == (0, "", "")
    code, out, _ = _run(["--enable", "missing-help,colon-name"], b"x:y 1\n")
    assert code == 3
    assert out.splitlines() == [
        "1: warning: x:y: no help text [missing-help]",
        "1: warning: x:y: metric names should not contain ':' (reserved for recording rules) "
        "[colon-name]",
    ]
    assert _run(["--enable", "all", "--ignore", "missing-help,colon-name"], b"x:y 1\n")[0] == 0
    code, out, err = _run(["--ignore", "dup-series,nope"], dup)
    assert code == 2 and out == "" and "'nope'" in err


def test_check_main_exit_3_prints_warnings():
    code, out, _ = _run([], b"# TYPE x counter\nx 1\n")
    assert code == 3
    assert out.splitlines() == [
        '1: warning: x: counter metrics should have "_total" suffix [counter-total]',
    ]


def test_check_main_exit_2_for_missing_file_and_bad_usage():
    code, out, err = _run([os.path.join(CORPUS, "no-such-file.prom")])
    assert code == 2 and out == "" and "no-such-file.prom" in err
    assert _run(["--format", "yaml"])[0] == 2
    assert _run(["a", "b"])[0] == 2


class _Handler(BaseHTTPRequestHandler):
    routes = {}
    seen = []

    def do_GET(self):
        self.seen.append(self.headers.get("Accept"))
        if self.path not in self.routes:
            self.send_error(404)
            return
        content_type, body = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_target():
    _Handler.routes = {
        "/om": (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            b"# TYPE c counter\n# HELP c C.\nc_total 1 # {} 1\n# EOF\n",
        ),
        "/text-without-eof": ("text/plain; version=0.0.4", b"# HELP x X.\n# TYPE x gauge\nx 1\n"),
        "/om-labelled-as-text": (
            "text/plain; version=0.0.4",
            b"# TYPE x gauge\n# HELP x X.\nx 1\n# EOF\n",
        ),
    }
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_check_main_fetches_urls_and_decides_by_content_type(http_target):
    assert _run([http_target + "/om", "--timeout", "5"])[0] == 0
    assert _Handler.seen[-1].startswith("application/openmetrics-text; version=1.0.0,text/plain")
    assert _run([http_target + "/text-without-eof"])[0] == 0
    # Content-Type wins over the body's # EOF: text 0.0.4 reads it as a comment (lint)
    code, out, _ = _run([http_target + "/om-labelled-as-text"])
    assert code == 3 and "'# EOF' is OpenMetrics syntax" in out
    assert _run([http_target + "/om", "--format", "text"])[0] == 1
    assert _Handler.seen[-1] == "text/plain; version=0.0.4"


def test_check_main_exit_2_for_http_errors(http_target):
    code, out, err = _run([http_target + "/missing"])
    assert code == 2 and "HTTP 404" in err
    code, _, err = _run(["http://127.0.0.1:1/metrics", "--timeout", "2"])
    assert code == 2 and err.startswith("error:")
