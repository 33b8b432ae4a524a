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
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd
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
    require_columns(texts, "texts", ("text_id", "at"))
    require_columns(assignments, "assignments", ("text_id", "theme_id", "label"))
    check_grain(grain)
    end = naive_utc(as_of)
    begin = naive_utc(start) if start is not None else None
    at = pd.to_datetime(texts["at"])
    keep = at < end
    if begin is not None:
        keep &= at >= begin
    frame = texts.loc[keep, ["text_id"]].copy()
    frame["period"] = period_start(at[keep], grain)
    with_sentiment = "sentiment_score" in texts.columns
    if with_sentiment:
        frame["sentiment"] = pd.to_numeric(texts.loc[keep, "sentiment_score"], errors="coerce")
    if not include_partial:
        frame = frame[frame["period"] + _OFFSET[grain] <= end]
        if begin is not None:
            frame = frame[frame["period"] >= begin]
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
    totals = frame.groupby("period").size().reindex(periods, fill_value=0)
    tagged = frame.merge(assignments[["text_id", "theme_id"]].drop_duplicates(), on="text_id", how="inner")
    grid = pd.MultiIndex.from_product([periods, themes["theme_id"]], names=["period", "theme_id"])
    grouped = tagged.groupby(["period", "theme_id"])
    out = grouped.size().rename("texts").reindex(grid, fill_value=0).reset_index()
    out = out.merge(themes, on="theme_id", how="left")
    out["period_end"] = out["period"] + _OFFSET[grain]
    out["total"] = totals.reindex(out["period"]).to_numpy()
    out["share"] = _percent(out["texts"].to_numpy(float), out["total"].to_numpy(float))
    columns = ["period", "period_end", "theme_id", "label", "texts", "total", "share"]
    if with_sentiment:
        scored = grouped["sentiment"].agg(["mean", "count"]).reindex(grid)
        out["sentiment"] = scored["mean"].to_numpy()
        out["sentiment_n"] = scored["count"].fillna(0).astype("int64").to_numpy()
        columns += ["sentiment", "sentiment_n"]
    out["texts"] = out["texts"].astype("int64")
    out["total"] = out["total"].astype("int64")
    return out[columns].sort_values(["period", "theme_id"], ignore_index=True)


def _freq(grain: str) -> str:
    return "W-MON" if grain == "week" else "MS"


def _themes(assignments: pd.DataFrame) -> pd.DataFrame:
    """One row per theme: its id and (first) label."""
    themes = assignments[["theme_id", "label"]].drop_duplicates("theme_id")
    return themes.sort_values("theme_id", ignore_index=True)


def _percent(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, 100 * k / np.where(n > 0, n, 1), np.nan)


def _bh(p: pd.Series, groups: pd.Series) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values within each group (NaN p-values stay NaN)."""
    out = np.full(len(p), np.nan)
    values = p.to_numpy(float)
    for _, index in pd.Series(np.arange(len(p))).groupby(groups.to_numpy()):
        rows = index.to_numpy()
        finite = rows[np.isfinite(values[rows])]
        if len(finite):
            out[finite] = st.false_discovery_control(values[finite], method="bh")
    return out


def emerging_issues(trends: pd.DataFrame, test: SpikeTest | None = None) -> pd.DataFrame:
    """Every (period, theme) with enough history, tested against the theme's own baseline.

    For a theme with ``k`` of the period's ``n`` texts, and ``K0`` of the ``N0`` texts of the
    ``baseline_periods`` periods before (at least ``min_baseline_periods`` of them with texts):
    under "the share has not changed", ``k`` given ``k + K0`` is Binomial(k + K0, n / (n + N0)),
    and the p-value is P(X >= k), exact. The p-values of the themes of one period are adjusted by
    Benjamini-Hochberg (``q_value``).

    Columns: those of :func:`theme_trends`, then ``baseline_texts``, ``baseline_total``,
    ``baseline_share`` (%), ``lift`` (share / baseline share; NULL when the baseline is empty),
    ``p_value``, ``q_value``, ``emerging`` (bool) and ``status`` (``new``, ``spike`` or NULL).
    """
    test = test or SpikeTest()
    require_columns(trends, "trends", ("period", "theme_id", "texts", "total"))
    ordered = trends.sort_values(["theme_id", "period"], ignore_index=True)
    by_theme = ordered.groupby("theme_id", sort=False)

    def before(column: str) -> pd.Series:
        rolled = by_theme[column].transform(
            lambda s: s.shift(1).rolling(test.baseline_periods, min_periods=1).sum()
        )
        return rolled.fillna(0)

    baseline_k = before("texts")
    baseline_n = before("total")
    history = by_theme["total"].transform(
        lambda s: (s > 0).astype(float).shift(1).rolling(test.baseline_periods, min_periods=1).sum()
    )
    tested = ordered[(history.fillna(0) >= test.min_baseline_periods) & (ordered["total"] > 0)].copy()
    k = tested["texts"].to_numpy(float)
    n = tested["total"].to_numpy(float)
    k0 = baseline_k[tested.index].to_numpy(float)
    n0 = baseline_n[tested.index].to_numpy(float)
    share0 = _percent(k0, n0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(share0 > 0, tested["share"].to_numpy(float) / share0, np.inf)
        p = st.binom.sf(k - 1, k + k0, n / (n + n0))
    p = np.where(k > 0, p, 1.0)
    tested["baseline_texts"] = k0.astype("int64")
    tested["baseline_total"] = n0.astype("int64")
    tested["baseline_share"] = share0
    tested["lift"] = np.where(np.isfinite(lift), lift, np.nan)
    tested["p_value"] = p
    tested["q_value"] = _bh(tested["p_value"], tested["period"])
    flagged = (tested["q_value"] <= test.alpha) & (k >= test.min_count) & (lift >= test.min_lift)
    tested["emerging"] = flagged.to_numpy()
    new = lift >= test.new_lift
    tested["status"] = [("new" if n else "spike") if f else None for f, n in zip(flagged, new, strict=True)]
    return tested.sort_values(["period", "theme_id"], ignore_index=True)


def what_changed(trends: pd.DataFrame, *, period: dt.date | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Each theme in ``period`` (default: the last one) against the period before, ranked:
    significant changes first, then by the size of the change in share.

    Under "the share has not changed", ``k1`` given ``k1 + k0`` is Binomial(k1 + k0, n1 / (n1 +
    n0)); the two-sided p-value doubles the smaller tail (capped at 1); Benjamini-Hochberg across
    the themes gives ``q_value``, and ``significant`` is ``q_value <= alpha``.

    Columns: ``rank``, ``theme_id``, ``label``, ``period``, ``previous``, ``texts``,
    ``previous_texts``, ``share``, ``previous_share``, ``change`` (share points), ``direction``
    (``up``, ``down``, ``flat``), ``p_value``, ``q_value``, ``significant``, and with sentiment
    ``sentiment``, ``previous_sentiment`` and ``sentiment_change``.
    """
    require_columns(trends, "trends", ("period", "theme_id", "label", "texts", "total", "share"))
    periods = sorted(pd.to_datetime(trends["period"]).unique())
    if period is not None:
        wanted = naive_utc(period)
        if wanted not in periods:
            raise ConfigError(f"period {wanted:%Y-%m-%d} is not one of the trend's periods")
        periods = [p for p in periods if p <= wanted]
    if len(periods) < 2:
        raise NotEnoughTexts(
            "what changed needs two complete periods with texts; "
            f"there {'is' if len(periods) == 1 else 'are'} {len(periods)}"
        )
    now = trends[trends["period"] == periods[-1]].set_index("theme_id")
    before = trends[trends["period"] == periods[-2]].set_index("theme_id").reindex(now.index)
    k1, n1 = now["texts"].to_numpy(float), now["total"].to_numpy(float)
    k0 = before["texts"].fillna(0).to_numpy(float)
    n0 = before["total"].fillna(0).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        trials, prob = k1 + k0, n1 / (n1 + n0)
        upper = st.binom.sf(k1 - 1, trials, prob)
        lower = st.binom.cdf(k1, trials, prob)
    p = np.where(trials > 0, np.minimum(1.0, 2 * np.minimum(upper, lower)), 1.0)
    out = pd.DataFrame(
        {
            "theme_id": now.index,
            "label": now["label"].to_numpy(),
            "period": periods[-1],
            "previous": periods[-2],
            "texts": k1.astype("int64"),
            "previous_texts": k0.astype("int64"),
            "share": now["share"].to_numpy(float),
            "previous_share": before["share"].to_numpy(float),
        }
    )
    out["change"] = out["share"] - out["previous_share"]
    out["direction"] = np.select([out["change"] > 0, out["change"] < 0], ["up", "down"], "flat")
    out["p_value"] = p
    out["q_value"] = _bh(out["p_value"], pd.Series(np.zeros(len(out))))
    out["significant"] = out["q_value"] <= alpha
    if "sentiment" in trends.columns:
        out["sentiment"] = now["sentiment"].to_numpy(float)
        out["previous_sentiment"] = before["sentiment"].to_numpy(float)
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
    trends = theme_trends(
        texts, assignments, as_of=as_of, grain=grain, start=start, include_partial=include_partial
    )
    notes: list[str] = []
    tested = emerging_issues(trends, test)
    if tested.empty:
        notes.append(
            f"emerging issues need {test.min_baseline_periods} earlier {grain}s with texts; "
            f"there are {trends['period'].nunique() - 1}"
        )
    emerging = tested[tested["emerging"]].reset_index(drop=True)
    try:
        changes = what_changed(trends, alpha=test.alpha)
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


def store_trend_report(
    store: Store,
    *,
    assign: Assign,
    as_of: dt.datetime,
    kinds: Iterable[str] = KINDS,
    grain: str = "week",
    start: dt.datetime | None = None,
    include_partial: bool = False,
    test: SpikeTest | None = None,
    periods: int | None = None,
) -> TrendReport:
    """:func:`trend_report` over our own brand's texts of ``kinds`` in the store (written before
    ``as_of``), with their sentiment (cached; only new texts are scored) and ``assign``'s themes."""
    from cxloop.voice.sentiment import corpus_sentiment

    check_grain(grain)
    texts = corpus_sentiment(store, kinds=kinds, start=start, end=as_of, competitors=False)
    return trend_report(
        texts, assign(texts), as_of=as_of, grain=grain, start=start,
        include_partial=include_partial, test=test, periods=periods,
    )  # fmt: skip
