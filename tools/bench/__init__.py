"""Side-by-side benchmark: dyn_metrics against prometheus_client, in one process.

Run from the root of a clone (no install needed for dyn_metrics)::

    pip install -e '.[bench]'                  # brings prometheus_client
    python -m tools.bench                      # full run, a few minutes on 2 cores
    python -m tools.bench --quick              # fewer repeats and sizes
    python -m tools.bench --json out.json --check
    python tools/bench --check                 # the same, running the directory

Method
------
* Both libraries live in this process. Every repeat runs each case once per
  library, alternating which one goes first (A B, B A, A B, ...), so slow drift
  and noise hit both sides alike. Reported: median and [min..max] over
  repeats, raw ns/op with nothing subtracted.
* Hot loops call a bound method held in a local (``f = c.inc``; ``for _ in
  repeat(None, n): f()``), the same loop shape on both sides. The garbage
  collector is disabled while a timed region runs.
* The floors of this machine (empty loop, ``x += 1``, ``with lock: x += 1``, an
  empty Python call) are measured in the same interleaved repeats and printed
  below the table, so absolute numbers can be put in context.
* prometheus_client runs with private ``CollectorRegistry`` objects and with
  ``_created`` series disabled, so both sides expose the same lines per series.
* The HTTP load client runs in its own interpreter (``http_client.py``) so
  its threads do not share a GIL with the servers under test.
* A title with "OUR" sets two dyn_metrics paths side by side (both columns
  are dyn_metrics; the row's note or title says which is which), and a
  prometheus_client row may do the same for its own paths.
* ratio = dyn_metrics / prometheus_client, lower is better. Cases with a target
  get PASS/FAIL; ``--check`` turns any FAIL (or a case that raised) into exit 1.

Files, one job each
-------------------
``__main__``       the entry point of both spellings above
``cli``            the command line, the phases, the header, the summary line, ``--json``
``sides``          the only code that calls either library (one adapter per side)
``harness``        ``Row`` (samples, median, ratio, PASS/FAIL) and ``Bench`` (interleaving)
``loops``          the timed loops, identical for both sides, and the machine's floors
``report``         the table, the notes, the busy-machine warning
``cases_*``        one phase each: import, hot, types, native, multiprocess, threads,
                   memory, scrape, churn, http, web, engine, export
``http_client``    the HTTP load client, standard library only, run as a script
"""
