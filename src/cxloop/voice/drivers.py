"""Key drivers: which themes go with low scores, by how much, and how many of the unhappy
customers they account for, so a manager knows which issue to fix first.

A pure analysis over the texts that carry a score (survey comments with their NPS or CSAT answer,
reviews with their star rating; ``texts`` as :func:`cxloop.voice.corpus.corpus_frame` returns
them) and their theme ``assignments`` (``text_id``, ``theme_id``, ``label``). For each metric and
theme, the answers whose text is tagged with the theme (*with*) are compared with the other
answers of the same metric (*without*):

========  ==========================================  =================================  ==========
metric    value                                       interval of the gap                detractor
========  ==========================================  =================================  ==========
nps       100·(promoters − detractors)/n, 0-10 scale  Wald, variance of the NPS          0-6
          only                                        estimator (Rocks 2016) per group
csat      % satisfied (top two boxes of 5+ point      Newcombe's hybrid score (Wilson)   bottom two
          scales, else the top box)                                                      boxes
rating    mean stars, moved onto 1-5                  Welch t                            1-2 of 5
========  ==========================================  =================================  ==========

``priority`` = (share of the metric's detractors whose text has the theme) × (how far below
the others the theme's score is *at least*: the interval's bound nearest zero, as a fraction of
the metric's range: 200 NPS points, 100 % points, 4 stars) × 100. A theme whose gap is not
significantly negative gets 0. See docs/voice.md, "Key drivers".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd
from scipy import stats as st

from cxloop.errors import ConfigError
from cxloop.metrics.source import store_source, to_pandas
from cxloop.metrics.stats import nps_variance, wilson
from cxloop.voice.corpus import corpus
from cxloop.voice.trends import Assign, NotEnoughTexts, naive_utc, require_columns, taxonomy_themes

if TYPE_CHECKING:
    from cxloop.store.store import Store

METRICS: Final = ("nps", "csat", "rating")
RANGE: Final = {"nps": 200.0, "csat": 100.0, "rating": 4.0}
UNITS: Final = {"nps": "NPS points", "csat": "% satisfied", "rating": "stars (1-5)"}
ALL: Final = "all"
UNKNOWN: Final = "unknown"


@dataclass(frozen=True)
class DriversReport:
    """Every (segment, metric, theme) row, the ranked list to fix first, and notes."""

    drivers: pd.DataFrame
    fix_first: pd.DataFrame
    notes: tuple[str, ...] = field(default=())


def answers(texts: pd.DataFrame) -> pd.DataFrame:
    """The scored texts as answers of a metric: ``text_id``, ``customer_id``, ``metric``,
    ``value`` (per answer, so that the mean is the metric: ±100 or 0 for NPS, 100 or 0 for
    CSAT, stars on 1-5 for ratings), ``promoter``, ``detractor``."""
    require_columns(texts, "texts", ("text_id", "score", "scale_min", "scale_max", "score_kind"))
    score = pd.to_numeric(texts["score"], errors="coerce").to_numpy(float)
    low = pd.to_numeric(texts["scale_min"], errors="coerce").to_numpy(float)
    high = pd.to_numeric(texts["scale_max"], errors="coerce").to_numpy(float)
    kind = texts["score_kind"].astype(object).to_numpy()
    points = high - low + 1
    valid = np.isfinite(score) & np.isfinite(low) & np.isfinite(high) & (high > low)
    nps = valid & (kind == "nps") & (low == 0) & (high == 10)
    csat = valid & (kind == "csat")
    rating = valid & (kind == "rating")
    wide = points >= 5
    bottom = np.where(wide, score <= low + 1, score <= low)
    satisfied = np.where(wide, score >= high - 1, score >= high)
    stars = 1 + 4 * (score - low) / np.where(valid, high - low, 1)
    metric = np.select([nps, csat, rating], list(METRICS), "")
    value = np.select(
        [nps & (score >= 9), nps & (score <= 6), nps, csat, rating],
        [100.0, -100.0, 0.0, np.where(satisfied, 100.0, 0.0), stars],
        np.nan,
    )
    out = pd.DataFrame(
        {
            "text_id": texts["text_id"].to_numpy(),
            "customer_id": texts["customer_id"].to_numpy() if "customer_id" in texts else None,
            "metric": metric,
            "value": value,
            "promoter": nps & (score >= 9),
            "detractor": np.where(nps, score <= 6, bottom),
        }
    )
    return out[out["metric"] != ""].reset_index(drop=True)


def key_drivers(
    texts: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    as_of: dt.datetime | dt.date,
    start: dt.datetime | dt.date | None = None,
    customers: pd.DataFrame | None = None,
    segment: str | None = None,
    by_segment: bool = False,
    min_n: int = 10,
    confidence: float = 0.95,
) -> DriversReport:
    """Key drivers of NPS, CSAT and rating among the texts written in ``[start, as_of)``.

    Rows (``drivers``): ``segment`` (``all``, or each of ``customers.segment`` with
    ``by_segment``, ``unknown`` for texts without a known customer or segment), ``metric``,
    ``theme_id``, ``label``, ``n_with``, ``n_without``, ``with_value``, ``without_value``,
    ``gap`` (with − without), ``ci_low``, ``ci_high``, ``significant`` (the interval excludes 0),
    ``detractors_with``, ``detractors``, ``detractor_share`` (%), ``priority``, ``rank`` (within
    the segment and metric, by priority) and ``note`` (why a row has no gap: too few answers).
    Themes no scored text mentions are left out. ``fix_first``: per segment, the rows with a
    priority above 0, highest first.

    ``segment`` keeps only the answers of that segment's customers.
    """
    if min_n < 2:
        raise ConfigError(f"min_n must be at least 2, not {min_n}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, not {confidence}")
    require_columns(texts, "texts", ("text_id", "at", "customer_id"))
    require_columns(assignments, "assignments", ("text_id", "theme_id", "label"))
    at = pd.to_datetime(texts["at"])
    keep = at < naive_utc(as_of)
    if start is not None:
        keep &= at >= naive_utc(start)
    scored = answers(texts[keep.to_numpy()])
    window = f"before {naive_utc(as_of):%Y-%m-%d}" + (f" from {naive_utc(start):%Y-%m-%d}" if start else "")
    if scored.empty:
        raise NotEnoughTexts(
            f"no survey comment or review with an NPS, CSAT or star rating {window}: "
            "key drivers compare scores"
        )
    notes: list[str] = []
    scored["segment"] = ALL
    known: pd.Series | None = None
    if segment is not None or by_segment:
        if customers is None:
            raise ConfigError("segments need the customers frame (customer_id, segment)")
        require_columns(customers, "customers", ("customer_id", "segment"))
        of = customers.drop_duplicates("customer_id").set_index("customer_id")["segment"]
        known = scored["customer_id"].map(of).fillna(UNKNOWN).astype(str)
        if segment is not None:
            names = sorted(set(customers["segment"].dropna().astype(str)))
            if segment not in names:
                raise ConfigError(f"segment {segment!r} is not one of {', '.join(names) or 'none'}")
            scored = scored[(known == segment).to_numpy()].assign(segment=segment)
            if scored.empty:
                raise NotEnoughTexts(f"no scored text {window} from a customer of segment {segment!r}")
            known = None
        else:
            scored["known"] = known.to_numpy()
    tags = assignments[["text_id", "theme_id", "label"]].drop_duplicates(["text_id", "theme_id"])
    tagged = scored.merge(tags, on="text_id", how="inner")
    if tagged.empty:
        raise NotEnoughTexts(
            f"none of the {scored['text_id'].nunique()} scored texts {window} is tagged with a theme"
        )
    if known is not None:  # every answer twice: in the whole population and in its segment
        scored, tagged = (
            pd.concat([f, f.assign(segment=f["known"])], ignore_index=True) for f in (scored, tagged)
        )
    z = float(st.norm.ppf(0.5 + confidence / 2))
    drivers = _compare(scored, tagged, min_n, z, confidence)
    few = drivers["note"].notna().sum()
    if few:
        notes.append(f"{few} row(s) have fewer than {min_n} answers with or without the theme: no gap shown")
    fix_first = drivers[drivers["priority"] > 0]
    fix_first = fix_first.assign(_first=fix_first["segment"] != ALL).sort_values(
        ["_first", "segment", "priority", "detractor_share", "metric", "theme_id"],
        ascending=[True, True, False, False, True, True],
    )
    fix_first = fix_first.drop(columns=["_first", "rank"]).reset_index(drop=True)
    fix_first.insert(0, "order", fix_first.groupby("segment").cumcount() + 1)
    if fix_first.empty:
        notes.append("no theme goes with a significantly lower score: nothing to fix first")
    return DriversReport(drivers, fix_first, tuple(notes))


def _sums(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.assign(value_sq=frame["value"] ** 2)
    return frame.groupby(keys, sort=True).agg(
        n=("value", "size"),
        total=("value", "sum"),
        total_sq=("value_sq", "sum"),
        promoters=("promoter", "sum"),
        detractors=("detractor", "sum"),
    )


def _compare(
    scored: pd.DataFrame, tagged: pd.DataFrame, min_n: int, z: float, confidence: float
) -> pd.DataFrame:
    groups = ["segment", "metric"]
    all_ = _sums(scored, groups)
    with_ = _sums(tagged, [*groups, "theme_id"]).reset_index()
    labels = tagged.drop_duplicates("theme_id").set_index("theme_id")["label"]
    out = with_.merge(all_.reset_index(), on=groups, suffixes=("_w", "_all"))
    stat = {c: out[f"{c}_w"].to_numpy(float) for c in ("n", "total", "total_sq", "promoters", "detractors")}
    rest = {c: out[f"{c}_all"].to_numpy(float) - stat[c] for c in stat}
    n1, n0 = stat["n"], rest["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, m0 = stat["total"] / n1, rest["total"] / n0
    gap = m1 - m0
    metric = out["metric"].to_numpy()
    low, high = np.full(len(out), np.nan), np.full(len(out), np.nan)
    for name, interval in (("nps", _nps_gap), ("csat", _csat_gap), ("rating", _mean_gap)):
        rows = metric == name
        if rows.any():
            # Rows with too few answers on a side get no interval; the arithmetic may divide by 0.
            with np.errstate(divide="ignore", invalid="ignore"):
                lo, hi = interval(
                    {k: v[rows] for k, v in stat.items()},
                    {k: v[rows] for k, v in rest.items()},
                    z,
                    confidence,
                )
            low[rows], high[rows] = lo, hi
    enough = (n1 >= min_n) & (n0 >= min_n)
    table = pd.DataFrame(
        {
            "segment": out["segment"],
            "metric": metric,
            "theme_id": out["theme_id"],
            "label": out["theme_id"].map(labels).to_numpy(),
            "n_with": n1.astype("int64"),
            "n_without": n0.astype("int64"),
            "with_value": m1,
            "without_value": np.where(n0 > 0, m0, np.nan),
            "gap": np.where(enough, gap, np.nan),
            "ci_low": np.where(enough, low, np.nan),
            "ci_high": np.where(enough, high, np.nan),
        }
    )
    table["significant"] = enough & ((low > 0) | (high < 0))
    detractors = out["detractors_all"].to_numpy(float)
    table["detractors_with"] = stat["detractors"].astype("int64")
    table["detractors"] = detractors.astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(detractors > 0, stat["detractors"] / detractors, 0.0)
    table["detractor_share"] = 100 * share
    span = np.array([RANGE[m] for m in metric])
    conservative = np.where(enough & (high < 0), -high, 0.0)
    table["priority"] = 100 * share * conservative / span
    table["note"] = [
        None if ok else f"only {int(a)} answers with the theme and {int(b)} without (fewer than {min_n})"
        for ok, a, b in zip(enough, n1, n0, strict=True)
    ]
    table["_first"] = table["segment"] != ALL  # the whole population first, then each segment
    table["_few"] = ~enough
    table = table.sort_values(
        ["_first", "segment", "metric", "_few", "priority", "detractor_share", "theme_id"],
        ascending=[True, True, True, True, False, False, True],
        ignore_index=True,
    )
    rank = table.groupby(["segment", "metric"]).cumcount() + 1
    table.insert(len(table.columns) - 3, "rank", rank.where(~table["_few"]).astype("Int64"))
    return table.drop(columns=["_first", "_few"])


Stats = dict[str, np.ndarray]


def _nps_gap(w: Stats, o: Stats, z: float, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """NPS(with) − NPS(without) ± z·sqrt(Var₁ + Var₀), Var = 100²·[p + d − (p − d)²]/n."""
    gap = 100 * ((w["promoters"] - w["detractors"]) / w["n"] - (o["promoters"] - o["detractors"]) / o["n"])
    se = np.sqrt(
        nps_variance(w["promoters"], w["detractors"], w["n"])
        + nps_variance(o["promoters"], o["detractors"], o["n"])
    )
    return gap - z * se, gap + z * se


def _csat_gap(w: Stats, o: Stats, z: float, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval (his method 10) from the two Wilson intervals, in %."""
    k1, n1, k0, n0 = w["total"] / 100, w["n"], o["total"] / 100, o["n"]
    l1, u1 = wilson(k1, n1, z)
    l0, u0 = wilson(k0, n0, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p0 = k1 / n1, k0 / n0
    d = p1 - p0
    low = d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return 100 * low, 100 * high


def _mean_gap(w: Stats, o: Stats, z: float, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch: difference of means ± t(df)·sqrt(s₁²/n₁ + s₀²/n₀), Welch-Satterthwaite df."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n1, n0 = w["n"], o["n"]
        m1, m0 = w["total"] / n1, o["total"] / n0
        v1 = np.maximum(w["total_sq"] - w["total"] ** 2 / n1, 0) / (n1 - 1)
        v0 = np.maximum(o["total_sq"] - o["total"] ** 2 / n0, 0) / (n0 - 1)
        a, b = v1 / n1, v0 / n0
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n0 - 1))
        t = np.where(se > 0, st.t.ppf(0.5 + confidence / 2, np.where(se > 0, df, 1)), 0.0)
    gap = m1 - m0
    return gap - t * se, gap + t * se


def store_key_drivers(
    store: Store,
    *,
    assign: Assign | None = None,
    as_of: dt.datetime,
    start: dt.datetime | None = None,
    segment: str | None = None,
    by_segment: bool = False,
    min_n: int = 10,
    confidence: float = 0.95,
) -> DriversReport:
    """:func:`key_drivers` over our own brand's scored survey comments and reviews in the store
    (written in ``[start, as_of)``), themed by ``assign`` (default: the store's curated taxonomy,
    :func:`cxloop.voice.trends.taxonomy_themes`), with the customers' segments."""
    assign = assign or taxonomy_themes(store)
    with store_source(store) as source:
        table = corpus(source, kinds=("survey", "review"), start=start, end=as_of, competitors=False)
        texts = to_pandas(table.filter(table.score.notnull()).order_by(["at", "text_id"]))
        customers = None
        if segment is not None or by_segment:
            customers = to_pandas(source.table("customers").select("customer_id", "segment"))
    return key_drivers(
        texts, assign(texts), as_of=as_of, start=start, customers=customers, segment=segment,
        by_segment=by_segment, min_n=min_n, confidence=confidence,
    )  # fmt: skip
