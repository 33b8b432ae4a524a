"""Theme trends, emerging issues and what changed: how often each theme comes up per week or
month, which themes spike against their own past, and which moved since the period before.

Pure analyses over two frames, so they run on any texts and any theme assignment:

* ``texts``: one row per text with at least ``text_id`` and ``at`` (naive UTC), as
  :func:`cxloop.voice.corpus.corpus_frame` returns them; ``sentiment_score`` (in [-1, 1], NULL where
  the language is not supported), as :func:`cxloop.voice.sentiment.corpus_sentiment` adds it, is
  optional;
* ``assignments``: ``text_id``, ``theme_id``, ``label``: which texts are about which theme (a text
  may have several themes, or none).

A theme's *share* in a period is the percentage of **all** texts of the period tagged with it
(untagged texts count in the denominator), so a quiet week does not look like a spike. Periods
are UTC weeks starting Monday, or calendar months; only complete periods (ended by ``as_of``)
are shown and compared unless ``include_partial`` is set. The tests are in docs/voice.md,
"Trends and emerging issues".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import signal
from scipy import stats as st

from cxloop.errors import ConfigError, CxloopError
from cxloop.voice.corpus import KINDS

if TYPE_CHECKING:
    from cxloop.store.store import Store

GRAINS: Final = ("week", "month")
_OFFSET: Final = {"week": pd.DateOffset(weeks=1), "month": pd.DateOffset(months=1)}


class NotEnoughTexts(CxloopError):
    """The texts given cannot support the analysis asked for (none, or too few periods)."""


@dataclass(frozen=True)
class SpikeTest:
    """The emerging-issue test's settings (docs/voice.md, "Trends and emerging issues").

    A theme is *emerging* in a period when its count there is significantly above what its share
    in the ``baseline_periods`` periods before predicts (one-sided exact conditional test,
    Benjamini-Hochberg across the themes of the period at ``alpha``), it has at least
    ``min_count`` texts, and its share is at least ``min_lift`` times its baseline share. It is
    *new* rather than a *spike* when its baseline share is below ``1 / new_lift`` of its share now
    (none at all included).
    """

    baseline_periods: int = 8
    min_baseline_periods: int = 4
    alpha: float = 0.05
    min_count: int = 5
    min_lift: float = 2.0
    new_lift: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_baseline_periods <= self.baseline_periods:
            raise ConfigError(
                "min_baseline_periods must be between 1 and baseline_periods "
                f"({self.baseline_periods}), not {self.min_baseline_periods}"
            )
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must be between 0 and 1, not {self.alpha}")
        if self.min_count < 1:
            raise ConfigError(f"min_count must be at least 1, not {self.min_count}")
        if self.min_lift < 1 or self.new_lift < self.min_lift:
            raise ConfigError(
                f"min_lift must be at least 1 and new_lift at least min_lift, not {self.min_lift} "
                f"and {self.new_lift}"
            )


def naive_utc(moment: dt.datetime | dt.date) -> pd.Timestamp:
    """``moment`` as a naive UTC timestamp (a date is its midnight)."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def check_grain(grain: str) -> str:
    if grain not in GRAINS:
        raise ConfigError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")
    return grain


def period_start(at: pd.Series, grain: str) -> pd.Series:
    """The start of each timestamp's period: the Monday of its UTC week, or the first of its
    month, at midnight."""
    at = pd.to_datetime(at)
    day = at.dt.normalize()
    if check_grain(grain) == "week":
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    return day - pd.to_timedelta(day.dt.day - 1, unit="D")


def period_end(start: pd.Timestamp, grain: str) -> pd.Timestamp:
    """The (exclusive) end of the period that begins at ``start``."""
    return pd.Timestamp(start + _OFFSET[check_grain(grain)])


def require_columns(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{name}: missing column(s) {', '.join(missing)}")


@dataclass(frozen=True)
class ThemeCounts:
    """Texts per period, theme and *stratum* (the texts' ``kind``: ticket, review, post, survey),
    the counts every trend, test and change is computed from.

    ``texts[p, t, s]``: texts of period ``p`` and stratum ``s`` tagged with theme ``t``;
    ``totals[p, s]``: all texts of period ``p`` and stratum ``s``. Periods run without gaps from
    the first to the last with texts. ``sentiment_sum`` and ``sentiment_n`` (period × theme) are
    there when the texts had ``sentiment_score``.
    """

    grain: str
    periods: pd.DatetimeIndex
    themes: pd.DataFrame  # theme_id, label
    strata: tuple[str, ...]
    texts: npt.NDArray[np.int64]
    totals: npt.NDArray[np.int64]
    sentiment_sum: npt.NDArray[np.float64] | None = None
    sentiment_n: npt.NDArray[np.int64] | None = None

    def frame(self) -> pd.DataFrame:
        """One row per (period, theme), zeros included (see :func:`theme_trends`)."""
        n_periods, n_themes = len(self.periods), len(self.themes)
        k = self.texts.sum(axis=2)
        n = np.repeat(self.totals.sum(axis=1), n_themes)
        out = pd.DataFrame(
            {
                "period": np.repeat(self.periods.to_numpy(), n_themes),
                "period_end": np.repeat((self.periods + _OFFSET[self.grain]).to_numpy(), n_themes),
                "theme_id": np.tile(self.themes["theme_id"].to_numpy(), n_periods),
                "label": np.tile(self.themes["label"].to_numpy(), n_periods),
                "texts": k.ravel().astype("int64"),
                "total": n.astype("int64"),
                "share": _percent(k.ravel().astype(float), n.astype(float)),
            }
        )
        if self.sentiment_sum is not None and self.sentiment_n is not None:
            scored = self.sentiment_n.ravel()
            with np.errstate(divide="ignore", invalid="ignore"):
                out["sentiment"] = np.where(scored > 0, self.sentiment_sum.ravel() / scored, np.nan)
            out["sentiment_n"] = scored.astype("int64")
        return out


def theme_counts(
    texts: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    as_of: dt.datetime | dt.date,
    grain: str = "week",
    start: dt.datetime | dt.date | None = None,
    include_partial: bool = False,
) -> ThemeCounts:
    """Count the texts per period, theme and kind (texts without ``kind`` are one stratum).

    Texts at or after ``as_of`` (and before ``start``) are left out; so are the periods they cut,
    unless ``include_partial``.
    """
    require_columns(texts, "texts", ("text_id", "at"))
    require_columns(assignments, "assignments", ("text_id", "theme_id", "label"))
    check_grain(grain)
    end = naive_utc(as_of)
    begin = naive_utc(start) if start is not None else None
    at = pd.to_datetime(texts["at"])
    keep = (at < end).to_numpy()
    if begin is not None:
        keep &= (at >= begin).to_numpy()
    frame = pd.DataFrame({"text_id": texts["text_id"].to_numpy()[keep]})
    frame["period"] = period_start(at[keep], grain).to_numpy()
    frame["stratum"] = texts["kind"].astype(str).to_numpy()[keep] if "kind" in texts.columns else "all"
    with_sentiment = "sentiment_score" in texts.columns
    if with_sentiment:
        frame["sentiment"] = pd.to_numeric(texts["sentiment_score"], errors="coerce").to_numpy()[keep]
    if not include_partial:
        complete = (frame["period"] + _OFFSET[grain] <= end).to_numpy()
        if begin is not None:
            complete &= (frame["period"] >= begin).to_numpy()
        frame = frame[complete]
    if frame.empty:
        raise NotEnoughTexts(
            f"no texts in complete {grain}s before {end:%Y-%m-%d %H:%M}"
            + (f" from {begin:%Y-%m-%d}" if begin is not None else "")
            + ": nothing to trend"
        )
    themes = _themes(assignments)
    if themes.empty:
        raise NotEnoughTexts("no text is tagged with a theme: nothing to trend")
    periods = pd.date_range(frame["period"].min(), frame["period"].max(), freq=_freq(grain))
    strata = tuple(sorted(frame["stratum"].unique()))
    p_of = periods.get_indexer(frame["period"])
    s_of = pd.Index(strata).get_indexer(frame["stratum"])
    totals = np.zeros((len(periods), len(strata)), dtype=np.int64)
    np.add.at(totals, (p_of, s_of), 1)
    frame = frame.assign(p=p_of, s=s_of)
    pairs = assignments[["text_id", "theme_id"]].drop_duplicates()
    tagged = frame.merge(pairs, on="text_id", how="inner")
    t_of = pd.Index(themes["theme_id"]).get_indexer(tagged["theme_id"])
    counts = np.zeros((len(periods), len(themes), len(strata)), dtype=np.int64)
    np.add.at(counts, (tagged["p"].to_numpy(), t_of, tagged["s"].to_numpy()), 1)
    sentiment_sum = sentiment_n = None
    if with_sentiment:
        scored = tagged["sentiment"].notna().to_numpy()
        sentiment_sum = np.zeros((len(periods), len(themes)))
        sentiment_n = np.zeros((len(periods), len(themes)), dtype=np.int64)
        where = (tagged["p"].to_numpy()[scored], t_of[scored])
        np.add.at(sentiment_sum, where, tagged["sentiment"].to_numpy(float)[scored])
        np.add.at(sentiment_n, where, 1)
    return ThemeCounts(grain, periods, themes, strata, counts, totals, sentiment_sum, sentiment_n)


def theme_trends(
    texts: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    as_of: dt.datetime | dt.date,
    grain: str = "week",
    start: dt.datetime | dt.date | None = None,
    include_partial: bool = False,
) -> pd.DataFrame:
    """Each theme's volume, share and mean sentiment per period.

    One row per (period, theme), zeros included, ordered by period then theme: ``period``
    (start, a timestamp), ``period_end`` (exclusive), ``theme_id``, ``label``, ``texts`` (texts
    of the period tagged with the theme), ``total`` (all texts of the period), ``share`` (% of
    ``total``), and when ``texts`` has ``sentiment_score``: ``sentiment`` (mean over the theme's
    scored texts of the period; NULL when none is scored) and ``sentiment_n``.

    Texts at or after ``as_of`` (and before ``start``) are left out; so are the periods they cut,
    unless ``include_partial``.
    """
    counts = theme_counts(
        texts, assignments, as_of=as_of, grain=grain, start=start, include_partial=include_partial
    )
    return counts.frame()


def _freq(grain: str) -> str:
    return "W-MON" if grain == "week" else "MS"


def _themes(assignments: pd.DataFrame) -> pd.DataFrame:
    """One row per theme: its id and (first) label."""
    themes = assignments[["theme_id", "label"]].drop_duplicates("theme_id")
    return themes.sort_values("theme_id", ignore_index=True)


def _percent(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, 100 * k / np.where(n > 0, n, 1), np.nan)


def _bh(p: npt.NDArray[np.float64], groups: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values within each group (NaN p-values stay NaN)."""
    out = np.full(len(p), np.nan)
    for group in np.unique(groups):
        rows = np.flatnonzero((groups == group) & np.isfinite(p))
        if len(rows):
            out[rows] = st.false_discovery_control(p[rows], method="bh")
    return out


# Beyond this many standard deviations from its mean a binomial's mass is below 1e-80: left out.
_SDS: Final = 20.0


def tails(
    k: npt.NDArray[np.int64], n: npt.NDArray[np.int64], k0: npt.NDArray[np.int64], n0: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """P(X >= x) and P(X <= x) for the stratified conditional test, one test per row.

    Rows are tests, columns strata: ``k`` of the ``n`` texts of the period and ``k0`` of the
    ``n0`` texts of the baseline are about the theme. Under "the theme's share of each stratum has
    not changed", given the ``m = k + k0`` texts of the theme in each stratum, ``k`` is
    Binomial(m, n / (n + n0)) independently per stratum, and X is their sum, x = sum(k). A
    stratum without baseline texts (n0 = 0) holds its k fixed: it is no evidence either way.
    One random stratum: scipy's binomial tails; several: their exact convolution (terms beyond
    20 standard deviations, below 1e-80, left out).
    """
    k, n, k0, n0 = (np.atleast_2d(np.asarray(a, dtype=np.int64)) for a in (k, n, k0, n0))
    m = k + k0
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = np.where(n + n0 > 0, n / (n + n0), 0.0)
    random = (m > 0) & (pi > 0) & (pi < 1)
    x = k.sum(axis=1) - np.where((m > 0) & (pi >= 1), m, 0).sum(axis=1)
    upper, lower = np.ones(len(k)), np.ones(len(k))
    one = random.sum(axis=1) <= 1
    trials = np.where(random, m, 0).sum(axis=1)[one]
    prob = np.where(random, pi, 0.0).sum(axis=1)[one]
    upper[one] = np.where(trials > 0, st.binom.sf(x[one] - 1, trials, prob), (x[one] <= 0).astype(float))
    lower[one] = np.where(trials > 0, st.binom.cdf(x[one], trials, prob), (x[one] >= 0).astype(float))
    several = np.flatnonzero(~one)
    if len(several):
        upper[several], lower[several] = _convolved_tails(
            x[several], m[several], pi[several], random[several]
        )
    return upper, lower


def _convolved_tails(
    x: npt.NDArray[np.int64],
    m: npt.NDArray[np.int64],
    pi: npt.NDArray[np.float64],
    random: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The tails of a sum of independent binomials, one sum per row (the random strata only).

    Each binomial's pmf is evaluated on mean ± 20 sd only, all of them in one scipy call; the
    pmfs of a row are then convolved."""
    rows, cols = np.nonzero(random)
    trials, prob = m[rows, cols], pi[rows, cols]
    sd = np.sqrt(trials * prob * (1 - prob))
    a = np.maximum(0, np.floor(trials * prob - _SDS * sd) - 1).astype(np.int64)
    b = np.minimum(trials, np.ceil(trials * prob + _SDS * sd) + 1).astype(np.int64)
    sizes = b - a + 1
    ends = np.cumsum(sizes)
    offsets = ends - sizes
    support = np.arange(ends[-1]) - np.repeat(offsets - a, sizes)
    pmf = st.binom.pmf(support, np.repeat(trials, sizes), np.repeat(prob, sizes))
    upper, lower = np.ones(len(x)), np.ones(len(x))
    first = np.searchsorted(rows, np.arange(len(x)))
    last = np.searchsorted(rows, np.arange(len(x)), side="right")
    for r in range(len(x)):
        total, low = np.ones(1), 0
        for j in range(first[r], last[r]):
            part = pmf[offsets[j] : ends[j]]
            big = len(total) * len(part) > 4_000_000
            total = np.clip(signal.fftconvolve(total, part), 0.0, None) if big else np.convolve(total, part)
            low += int(a[j])
        at = int(x[r]) - low
        upper[r] = min(1.0, float(total[max(at, 0) :].sum())) if at < len(total) else 0.0
        lower[r] = min(1.0, float(total[: at + 1].sum())) if at >= 0 else 0.0
    return upper, lower


def _expected(
    k: npt.NDArray[np.int64], n: npt.NDArray[np.int64], k0: npt.NDArray[np.int64], n0: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """The theme's expected texts in the period at each stratum's baseline share (a stratum
    without baseline texts expects what it has)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per_stratum = np.where(n0 > 0, n * k0 / np.where(n0 > 0, n0, 1), k)
    return np.asarray(per_stratum.sum(axis=1), dtype=float)


def emerging_issues(counts: ThemeCounts, test: SpikeTest | None = None) -> pd.DataFrame:
    """Every (period, theme) with enough history, tested against the theme's own baseline.

    The baseline of period t is the ``baseline_periods`` periods before it (at least
    ``min_baseline_periods`` of them with texts). Per stratum (kind of text), the theme has ``k``
    of the period's ``n`` texts and ``K0`` of the baseline's ``N0``; the one-sided p-value is
    P(X >= sum k) under :func:`tails`' null (with one stratum: ``k`` given ``k + K0`` is
    Binomial(k + K0, n / (n + N0)), exact). The p-values of the themes of one period are adjusted
    by Benjamini-Hochberg (``q_value``). See docs/voice.md for the flagging rule.

    Columns: those of :func:`theme_trends`, then ``baseline_texts``, ``baseline_total``,
    ``baseline_share`` (%: the share expected at each kind's baseline share), ``lift`` (texts /
    expected texts; NULL when none is expected), ``p_value``, ``q_value``, ``emerging`` (bool) and
    ``status`` (``new``, ``spike`` or NULL).
    """
    test = test or SpikeTest()
    k_all, n_all = counts.texts, counts.totals
    n_periods, n_themes, _ = k_all.shape
    window = test.baseline_periods
    zero_k = np.zeros((1, *k_all.shape[1:]), dtype=np.int64)
    cum_k = np.concatenate([zero_k, np.cumsum(k_all, axis=0)])
    cum_n = np.concatenate([np.zeros((1, n_all.shape[1]), dtype=np.int64), np.cumsum(n_all, axis=0)])
    cum_h = np.concatenate([[0], np.cumsum(n_all.sum(axis=1) > 0)])
    index = np.arange(n_periods)
    first = np.maximum(index - window, 0)
    base_k, base_n = cum_k[index] - cum_k[first], cum_n[index] - cum_n[first]
    history = cum_h[index] - cum_h[first]
    periods = np.flatnonzero((history >= test.min_baseline_periods) & (n_all.sum(axis=1) > 0))
    rows = counts.frame()
    if not len(periods):
        return _tested(rows.iloc[0:0], test)
    p_idx = np.repeat(periods, n_themes)
    t_idx = np.tile(np.arange(n_themes), len(periods))
    k, n = k_all[p_idx, t_idx], n_all[p_idx]
    k0, n0 = base_k[p_idx, t_idx], base_n[p_idx]
    upper, _ = tails(k, n, k0, n0)
    expected = _expected(k, n, k0, n0)
    tested = rows.iloc[p_idx * n_themes + t_idx].reset_index(drop=True)
    observed = k.sum(axis=1).astype(float)
    tested["baseline_texts"] = k0.sum(axis=1)
    tested["baseline_total"] = n0.sum(axis=1)
    tested["baseline_share"] = _percent(expected, n.sum(axis=1).astype(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        tested["lift"] = np.where(expected > 0, observed / np.where(expected > 0, expected, 1), np.nan)
    tested["p_value"] = np.where(observed > 0, upper, 1.0)
    tested["q_value"] = _bh(tested["p_value"].to_numpy(float), p_idx)
    return _tested(tested, test)


def _tested(tested: pd.DataFrame, test: SpikeTest) -> pd.DataFrame:
    if tested.empty:
        columns = ["baseline_texts", "baseline_total", "baseline_share", "lift", "p_value", "q_value"]
        tested = tested.assign(**{c: pd.Series(dtype=float) for c in columns})
    lift = tested["lift"].to_numpy(float)
    texts = tested["texts"].to_numpy(float)
    unexpected = np.isnan(lift) & (texts > 0)  # nothing expected, something came: a new theme
    big = unexpected | (np.nan_to_num(lift) >= test.min_lift)
    flagged = (tested["q_value"].to_numpy(float) <= test.alpha) & (texts >= test.min_count) & big
    new = unexpected | (np.nan_to_num(lift) >= test.new_lift)
    tested["emerging"] = flagged
    tested["status"] = [("new" if nw else "spike") if f else None for f, nw in zip(flagged, new, strict=True)]
    return tested.sort_values(["period", "theme_id"], ignore_index=True)


def what_changed(counts: ThemeCounts, *, period: dt.date | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Each theme in ``period`` (default: the last one) against the period before, ranked:
    significant changes first, then by the size of the change in share.

    The test is :func:`tails`' with the period before as the baseline, two-sided (twice the
    smaller tail, capped at 1); Benjamini-Hochberg across the themes gives ``q_value``, and
    ``significant`` is ``q_value <= alpha``.

    Columns: ``rank``, ``theme_id``, ``label``, ``period``, ``previous``, ``texts``,
    ``previous_texts``, ``share``, ``previous_share``, ``change`` (share points), ``direction``
    (``up``, ``down``, ``flat``), ``p_value``, ``q_value``, ``significant``, and with sentiment
    ``sentiment``, ``previous_sentiment`` and ``sentiment_change``.
    """
    last = len(counts.periods) - 1
    if period is not None:
        wanted = naive_utc(period)
        if wanted not in counts.periods:
            raise ConfigError(f"period {wanted:%Y-%m-%d} is not one of the trend's periods")
        last = int(counts.periods.get_loc(wanted))
    if last < 1:
        raise NotEnoughTexts(
            f"what changed needs a {counts.grain} before {counts.periods[last]:%Y-%m-%d}"
            if period is not None
            else "what changed needs two complete periods with texts; there is 1"
        )
    rows = counts.frame()
    n_themes = len(counts.themes)
    now = rows.iloc[last * n_themes : (last + 1) * n_themes].reset_index(drop=True)
    before = rows.iloc[(last - 1) * n_themes : last * n_themes].reset_index(drop=True)
    k, k0 = counts.texts[last], counts.texts[last - 1]
    n = np.broadcast_to(counts.totals[last], k.shape)
    n0 = np.broadcast_to(counts.totals[last - 1], k.shape)
    upper, lower = tails(k, n, k0, n0)
    out = pd.DataFrame(
        {
            "theme_id": now["theme_id"],
            "label": now["label"],
            "period": now["period"],
            "previous": before["period"],
            "texts": now["texts"],
            "previous_texts": before["texts"],
            "share": now["share"],
            "previous_share": before["share"],
        }
    )
    out["change"] = out["share"] - out["previous_share"]
    out["direction"] = np.select([out["change"] > 0, out["change"] < 0], ["up", "down"], "flat")
    out["p_value"] = np.minimum(1.0, 2 * np.minimum(upper, lower))
    out["q_value"] = _bh(out["p_value"].to_numpy(float), np.zeros(len(out)))
    out["significant"] = out["q_value"] <= alpha
    if "sentiment" in rows.columns:
        out["sentiment"] = now["sentiment"]
        out["previous_sentiment"] = before["sentiment"]
        out["sentiment_change"] = out["sentiment"] - out["previous_sentiment"]
    out["_size"] = out["change"].abs()
    out = out.sort_values(["significant", "_size", "theme_id"], ascending=[False, False, True])
    out = out.drop(columns="_size").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


@dataclass(frozen=True)
class TrendReport:
    """Trends, the emerging issues among them and what changed in the last period."""

    grain: str
    as_of: pd.Timestamp
    trends: pd.DataFrame
    emerging: pd.DataFrame  # flagged rows of emerging_issues only
    changes: pd.DataFrame  # empty when there is a single period
    notes: tuple[str, ...] = field(default=())


def trend_report(
    texts: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    as_of: dt.datetime | dt.date,
    grain: str = "week",
    start: dt.datetime | dt.date | None = None,
    include_partial: bool = False,
    test: SpikeTest | None = None,
    periods: int | None = None,
) -> TrendReport:
    """:func:`theme_trends`, the emerging issues among them (:func:`emerging_issues`, flagged
    rows only) and :func:`what_changed` in the last period, with notes where history is short.

    ``periods``: keep the trends and emerging issues of the last ``periods`` periods only (the
    tests still see the whole history before them)."""
    test = test or SpikeTest()
    if periods is not None and periods < 1:
        raise ConfigError(f"periods must be at least 1, not {periods}")
    counts = theme_counts(
        texts, assignments, as_of=as_of, grain=grain, start=start, include_partial=include_partial
    )
    trends = counts.frame()
    notes: list[str] = []
    tested = emerging_issues(counts, test)
    if tested.empty:
        notes.append(
            f"emerging issues need {test.min_baseline_periods} earlier {grain}s with texts; "
            f"there are {int((counts.totals.sum(axis=1) > 0).sum()) - 1}"
        )
    emerging = tested[tested["emerging"]].reset_index(drop=True)
    try:
        changes = what_changed(counts, alpha=test.alpha)
    except NotEnoughTexts as exc:
        notes.append(str(exc))
        changes = pd.DataFrame()
    if periods is not None:
        shown = sorted(trends["period"].unique())[-periods:]
        trends = trends[trends["period"] >= shown[0]].reset_index(drop=True)
        emerging = emerging[emerging["period"] >= shown[0]].reset_index(drop=True)
    return TrendReport(grain, naive_utc(as_of), trends, emerging, changes, tuple(notes))


#: Theme assignments for a frame of texts: ``texts`` -> ``text_id``, ``theme_id``, ``label``.
Assign = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class TaxonomyThemes:
    """The themes of taxonomy version ``version`` of the store (:func:`cxloop.voice.themes.tag`)
    as an :data:`Assign`: each text's theme, untagged texts left out. Equal (and hashing alike)
    for equal versions, so a result cached under it follows a curation at once: a new version
    is a new key."""

    store: Store = field(compare=False, hash=False, repr=False)
    version: int

    def __call__(self, texts: pd.DataFrame) -> pd.DataFrame:
        from cxloop.voice.themes import tag

        tagged = tag(self.store, texts["text"].fillna("").astype(str).tolist(), version=self.version)
        keep = tagged["theme_id"].notna().to_numpy()
        return pd.DataFrame(
            {
                "text_id": texts["text_id"].to_numpy()[keep],
                "theme_id": tagged["theme_id"][keep].astype("int64").to_numpy(),
                "label": tagged["label"].to_numpy()[keep],
            }
        )


def taxonomy_themes(store: Store) -> TaxonomyThemes:
    """The store's current curated themes as an :data:`Assign` (:class:`TaxonomyThemes` of the
    latest taxonomy version). With no themes discovered yet it raises ``ConfigError`` saying so
    (at once, before any text is read)."""
    from cxloop.voice.themes import current_taxonomy

    taxonomy = current_taxonomy(store)
    if taxonomy is None:
        raise ConfigError("no themes yet: discover them first (cxloop voice themes discover)")
    return TaxonomyThemes(store, taxonomy.version)


def store_trend_report(
    store: Store,
    *,
    assign: Assign | None = None,
    as_of: dt.datetime,
    kinds: Iterable[str] = KINDS,
    grain: str = "week",
    start: dt.datetime | None = None,
    include_partial: bool = False,
    test: SpikeTest | None = None,
    periods: int | None = None,
) -> TrendReport:
    """:func:`trend_report` over our own brand's texts of ``kinds`` in the store (written before
    ``as_of``), with their sentiment (cached; only new texts are scored) and themes (``assign``;
    default: the store's curated taxonomy, :func:`taxonomy_themes`)."""
    from cxloop.voice.sentiment import corpus_sentiment

    check_grain(grain)
    assign = assign or taxonomy_themes(store)
    texts = corpus_sentiment(store, kinds=kinds, start=start, end=as_of, competitors=False)
    return trend_report(
        texts, assign(texts), as_of=as_of, grain=grain, start=start,
        include_partial=include_partial, test=test, periods=periods,
    )  # fmt: skip
