"""Streaming quantiles: targeted quantile summaries and their sliding window of age buckets.

The algorithm is Cormode, Korn, Muthukrishnan and Srivastava's *targeted
quantiles* (CKMS, "Effective Computation of Biased Quantiles over Data
Streams", ICDE 2005), the one beorn7/perks implements for client_golang, with
an invariant made strictly conservative so that the guarantee below holds on
every input. Nothing here knows about metrics.

A :class:`QuantileStream` keeps ``n`` (the values seen) and a sorted list of
tuples ``(v_i, g_i, d_i)`` in three parallel lists. With ``rmin(i) = g_0 + ...
+ g_i`` and ``rmax(i) = rmin(i) + d_i``, the position of ``v_i`` among the
values seen (1-based, in sorted order) lies in ``[rmin(i), rmax(i)]``; the
first and last tuples are the exact minimum and maximum (``g = 1``, ``d = 0``
for the first, ``rmin = rmax = n`` for the last).

Guarantee. For every objective ``q: eps`` (``0 < q, eps < 1``), :meth:`query`
returns a value ``v`` seen by the stream whose rank interval ``[count(< v),
count(<= v)]`` meets ``[q*n - eps*n, q*n + eps*n]``: the rank error is at most
``eps * n``. Why it holds:

* let ``j`` be the first tuple with ``rmax(j) > t + e + 1`` (``t = q*n``,
  ``e = eps*n``; the last tuple if there is none), so ``rmax(j-1) <= t + e +
  1``; if every tuple whose *span* ``(rmin(j) - g_j,
  rmax(j)]`` contains ``t + e + 1`` has ``g_j + d_j <= 2e + 1``, then
  ``rmin(j-1) = rmax(j) - g_j - d_j > t - e``, so the position ``p`` of the
  tuple ``j-1`` lies in ``[t - e, t + e + 1]`` and ``[p - 1, p]``, inside
  its rank interval, meets ``[t - e, t + e]``. The query answers with the
  tuple before ``j`` that has ``rmin >= t - e`` and whose position is
  likeliest nearest ``t`` (``j-1`` is one such);
* every tuple keeps ``g + d <= A(span)``, the minimum over its span of
  ``min_q A_q(x, n)``, where ``A_q`` is ``2e + 1`` on the band ``[t - e - 1,
  t + e + 1]`` and grows linearly away from it, with slope ``2eps / (q + eps)``
  above and ``2eps / (1 - q + eps)`` below. Those slopes make ``A_q`` at a
  tuple's (shifting) rank non-decreasing as values arrive, whether they land
  below the tuple (its rank and the band both move up, the band slower) or
  above it (only the band moves). CKMS's own function, slopes ``2eps/q``
  and ``2eps/(1-q)`` with no flat band, allows a tuple at rank ``t + e``
  ``2e * (1 + eps/q)``, more than the ``2e + 1`` the query needs once
  ``n > q / (2 eps**2)``; and perks evaluates it at ``rmin`` only, which
  understates the uncertainty of a tuple below the target;
* inserting keeps the invariant: a value inserted before tuple ``i`` gets ``g
  = 1`` and ``d = g_i + d_i - 1`` (its position is known within the gap),
  which is tuple ``i``'s old uncertainty moved along the trajectory just
  described; a run of sorted values inserted into one gap is thinned at once
  (every ``s``-th value kept, the others counted into the ``g`` of the next
  kept one) with ``s`` chosen so that the allowance over the whole run holds;
  merging a tuple into its successor is done only when the merged tuple meets
  the allowance over its merged span. The first tuple is never merged away.

Memory: no bound is proven for the targeted variant (GK's proof covers a
uniform error), so the bound is a measured one: for the objectives ``0.5:
0.05, 0.9: 0.01, 0.99: 0.001`` a stream holds about 50 tuples (a few hundred
with heavy duplicates), whatever ``n``, and the tests check at most 400 over
200k values of several distributions; tuples far from every target are wide,
since the allowance grows linearly with the distance to the nearest band.

Speed in CPython: a batch goes into a stream in one pass over the gaps that
receive values (the runs between two tuples are located by bisection and
copied, thinned, with C-level slices), then one compression pass; both cost
about the summary's size in Python steps, whatever the batch's size, and
the compression runs only when the summary has grown by an eighth (plus 8
tuples) since the last one.

:class:`AgeWindow` is client_golang's sliding window: ``age_buckets`` streams
all receiving every value; the *head* stream answers queries and, every
``max_age / age_buckets`` seconds, is reset and the next one becomes head, so
the head holds the values of the last ``max_age`` seconds at most (and at
least those of the last ``max_age - max_age / age_buckets``). Windows and
streams are never changed once built: inserting or rotating returns new ones,
so a reader holding an old one always sees a consistent state.
"""

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from typing import Optional

#: ``(q, eps, slope above, slope below)`` of one objective.
_Target = tuple[float, float, float, float]
#: ``(base, band top, band bottom, slope above, slope below)`` for one ``n``.
_Allowance = tuple[float, float, float, float, float]

NAN = math.nan


def targets_of(objectives: Mapping[float, float]) -> tuple[_Target, ...]:
    """The objectives ``{q: eps}`` (already validated) as the stream's targets, by ``q``."""
    return tuple(
        (q, eps, 2.0 * eps / (q + eps), 2.0 * eps / (1.0 - q + eps))
        for q, eps in sorted(objectives.items())
    )


def _allowances(targets: Sequence[_Target], n: int) -> list[_Allowance]:
    out = []
    for q, eps, up_slope, down_slope in targets:
        e = eps * n
        t = q * n
        out.append((2.0 * e + 1.0, t + e + 1.0, t - e - 1.0, up_slope, down_slope))
    return out


def _allowance(bands: Sequence[_Allowance], lo: float, hi: float) -> float:
    """The least ``min_q A_q(x)`` for ``x`` in ``[lo, hi]`` (each ``A_q`` is V-shaped)."""
    best = math.inf
    for base, top, bottom, up_slope, down_slope in bands:
        if lo > top:
            a = base + up_slope * (lo - top)
        elif hi < bottom:
            a = base + down_slope * (bottom - hi)
        else:
            a = base
        if a < best:
            best = a
    return best


class QuantileStream:
    """A targeted quantile summary of the values inserted so far (never changed in place).

    ``insert_sorted(batch)`` returns a new stream holding the batch too;
    ``query(q)`` answers within the guarantee of the module docstring for each
    target ``q`` (NaN when empty).
    """

    __slots__ = ("targets", "n", "values", "widths", "deltas", "compressed")

    def __init__(
        self,
        targets: tuple[_Target, ...],
        n: int = 0,
        values: Optional[list[float]] = None,
        widths: Optional[list[int]] = None,
        deltas: Optional[list[int]] = None,
        compressed: int = 0,
    ) -> None:
        self.targets = targets
        #: The number of tuples after the last compression.
        self.compressed = compressed
        self.n = n
        self.values: list[float] = values if values is not None else []
        self.widths: list[int] = widths if widths is not None else []
        self.deltas: list[int] = deltas if deltas is not None else []

    def __len__(self) -> int:
        """The number of tuples kept."""
        return len(self.values)

    def empty(self) -> "QuantileStream":
        """A stream with the same targets and no values."""
        return QuantileStream(self.targets)

    def insert_sorted(self, batch: list[float]) -> "QuantileStream":
        """A new stream holding this one's values and ``batch`` (sorted, no NaN), compressed."""
        k = len(batch)
        if not k:
            return self
        n = self.n + k
        bands = _allowances(self.targets, n)
        vals, gs, ds = self.values, self.widths, self.deltas
        size = len(vals)
        if not size:
            values, widths, deltas = list(batch), [1] * k, [0] * k
        else:
            values, widths, deltas = [], [], []
            # Values below the minimum: their positions are exact.
            pos = bisect_left(batch, vals[0])
            if pos:
                values += batch[:pos]
                widths += [1] * pos
                deltas += [0] * pos
            rank = pos  # rmin of the last tuple written
            i = 0  # the next stream tuple to write
            while pos < k:
                # The first tuple above the next batch value: the values
                # in [vals[j-1], vals[j]) go into the gap before it.
                j = bisect_right(vals, batch[pos], i)
                if j == size:
                    break  # the rest is >= the maximum
                if j > i:
                    values += vals[i:j]
                    widths += gs[i:j]
                    deltas += ds[i:j]
                    rank += sum(gs[i:j])
                g, d = gs[j], ds[j]
                end = bisect_left(batch, vals[j], pos)
                run = end - pos
                span = g + d
                # Keep every s-th value of the run: the allowance over the
                # whole run and tuple j bounds each kept tuple's g + d.
                s = int(_allowance(bands, rank, rank + run + span)) - span + 1
                if s <= 1:
                    values += batch[pos:end]
                    widths += [1] * run
                    deltas += [span - 1] * run
                    rest = 0
                else:
                    m = run // s
                    values += batch[pos + s - 1 : pos + m * s : s]
                    widths += [s] * m
                    deltas += [span - 1] * m
                    rest = run - m * s
                values.append(vals[j])
                widths.append(g + rest)
                deltas.append(d)
                rank += run + g
                pos = end
                i = j + 1
            # The tuples left, then the values >= the maximum (exact positions).
            values += vals[i:]
            widths += gs[i:]
            deltas += ds[i:]
            tail = k - pos
            if tail:
                values += batch[pos:]
                widths += [1] * tail
                deltas += [0] * tail
        base = self.compressed
        if len(values) <= base + (base >> 3) + 8:
            # Thinning the runs kept the summary about as small as the last
            # compression left it (the steady state): compressing again would
            # merge little, for a pass over every tuple.
            return QuantileStream(self.targets, n, values, widths, deltas, base)
        values, widths, deltas = _compress(bands, values, widths, deltas)
        return QuantileStream(self.targets, n, values, widths, deltas, len(values))

    def query(self, q: float) -> float:
        """The value at quantile ``q`` (one of the targets for the guarantee); NaN when empty."""
        vals = self.values
        if not vals:
            return NAN
        eps = 0.0
        for tq, te, _, _ in self.targets:
            if tq == q:
                eps = te
        n = self.n
        t = q * n
        limit = t + eps * n + 1.0
        floor = t - eps * n
        # Every tuple before the first with rmax > limit has rmax <= limit;
        # the one just before it also has rmin >= t - e (module docstring).
        # Among those, the one whose position is likeliest nearest t wins.
        best = vals[0]
        distance = math.inf
        rank = 0
        ds = self.deltas
        for i, g in enumerate(self.widths):
            rank += g
            top = rank + ds[i]
            if top > limit:
                break
            if rank >= floor:
                off = abs((rank + top) * 0.5 - 0.5 - t)
                if off < distance:
                    best, distance = vals[i], off
        return best


def _compress(
    bands: Sequence[_Allowance], values: list[float], widths: list[int], deltas: list[int]
) -> tuple[list[float], list[int], list[int]]:
    """Merge each tuple into its successor where the merged one meets its allowance.

    One pass, left to right; the first tuple (the minimum) is never merged
    away, the last one is only ever merged into.
    """
    size = len(values)
    if size < 3:
        return values, widths, deltas
    out_v = [values[0]]
    out_g = [widths[0]]
    out_d = [deltas[0]]
    low = widths[0]  # rmin of the last tuple written: the span start of the pending one
    pv, pg, pd = values[1], widths[1], deltas[1]
    for i in range(2, size):
        g = widths[i]
        d = deltas[i]
        merged = pg + g + d
        if merged <= _allowance(bands, low, low + merged):
            pv, pg, pd = values[i], pg + g, d
        else:
            out_v.append(pv)
            out_g.append(pg)
            out_d.append(pd)
            low += pg
            pv, pg, pd = values[i], g, d
    out_v.append(pv)
    out_g.append(pg)
    out_d.append(pd)
    return out_v, out_g, out_d


#: Values buffered (sorted runs, 8 bytes each) before they are merged into the
#: streams: a merge costs about the same for any batch larger than the
#: summary, so merging 8192 values at once costs an eighth of 8 merges of 1024.
MERGE_AT = 8192


class AgeWindow:
    """client_golang's sliding window of ``age_buckets`` streams (never changed in place).

    Every value goes into every stream; :meth:`rotated` resets the head and
    advances the window each ``duration`` seconds of the clock value given.
    Batches wait in a buffer of sorted runs until :data:`MERGE_AT` values are
    waiting, or until a rotation or a query needs them (:meth:`merged`).
    """

    __slots__ = ("streams", "head", "expiry", "duration", "buffer", "buffered")

    def __init__(
        self,
        streams: tuple[QuantileStream, ...],
        head: int,
        expiry: float,
        duration: float,
        buffer: tuple["array[float]", ...] = (),
        buffered: int = 0,
    ) -> None:
        self.streams = streams
        self.head = head
        self.expiry = expiry
        self.duration = duration
        self.buffer = buffer
        self.buffered = buffered

    @classmethod
    def new(
        cls, targets: tuple[_Target, ...], age_buckets: int, max_age: float, now: float
    ) -> "AgeWindow":
        """An empty window whose head expires ``max_age / age_buckets`` after ``now``."""
        duration = max_age / age_buckets
        empty = QuantileStream(targets)
        return cls((empty,) * age_buckets, 0, now + duration, duration)

    def _with(
        self,
        streams: tuple[QuantileStream, ...],
        head: int,
        expiry: float,
        buffer: tuple["array[float]", ...] = (),
        buffered: int = 0,
    ) -> "AgeWindow":
        return AgeWindow(streams, head, expiry, self.duration, buffer, buffered)

    def add(self, batch: list[float]) -> "AgeWindow":
        """This window with ``batch`` (sorted, no NaN) added; merged when enough are waiting."""
        if not batch:
            return self
        buffered = self.buffered + len(batch)
        window = self._with(
            self.streams, self.head, self.expiry, self.buffer + (array("d", batch),), buffered
        )
        return window.merged() if buffered >= MERGE_AT else window

    def merged(self) -> "AgeWindow":
        """This window with the buffered values merged into every stream."""
        if not self.buffer:
            return self
        values: list[float] = []
        for run in self.buffer:
            values += run
        if len(self.buffer) > 1:
            values.sort()  # sorted runs: a linear merge in C
        streams = tuple(s.insert_sorted(values) for s in self.streams)
        return self._with(streams, self.head, self.expiry)

    def rotated(self, now: float) -> "AgeWindow":
        """This window at clock value ``now``: each head that expired by then is reset."""
        if now < self.expiry:
            return self
        window = self.merged()
        streams = list(window.streams)
        k = len(streams)
        steps = int((now - window.expiry) // self.duration) + 1
        head = window.head
        for _ in range(min(steps, k)):
            streams[head] = streams[head].empty()
            head = (head + 1) % k
        head = (window.head + steps) % k
        return self._with(tuple(streams), head, window.expiry + steps * self.duration)

    def query(self, q: float) -> float:
        """The head stream's value at ``q`` (buffered values included); NaN when empty."""
        return self.merged().streams[self.head].query(q)

    def size(self) -> int:
        """The tuples held by all the streams (the buffer aside)."""
        return sum(len(s) for s in self.streams)
