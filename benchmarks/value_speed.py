"""Benchmark: BG/NBD + Gamma-Gamma fit and predictions (issue 6, "Customer value").

Run from the project root (the venv active)::

    python -m benchmarks.value_speed                        # CDNOW, 100k and 1M customers
    python -m benchmarks.value_speed --sizes 100000         # one generated size (plus CDNOW)

What it does:

1. **Data.** CDNOW: the published 2,357-customer summary (``cdnow_customers_summary_with_
   transactions.csv`` in ../shared/data/cdnow). Generated: ``cxloop.value.simulate.
   bgnbd_customers(n, seed=42)`` — customers drawn from the BG/NBD process with CDNOW's
   parameters (ages 1-364 days, times in whole days, in weeks) and Gamma-Gamma spend. Each data
   set is written once to a CSV in the work dir, which both cases read.
2. **Cases**, each in its own process, timing only the work (reading the CSV is excluded); under
   200k customers each process does the work ``--inner`` times (default 5) and the fastest run
   counts, so that one-time costs of either library (first calls, autograd's tracing) do not
   dominate 30 ms of work; the first ("cold") run is reported beside:
   ``cxloop`` — ``BetaGeo.fitted`` + ``GammaGamma.fitted`` on the repeat customers, then for
   every customer (``customer_values``) P(alive), expected purchases in the next 12 months,
   expected spend and the 12-month CLV (monthly discount 1%); ``lifetimes`` 0.11.3 — the same
   with ``BetaGeoFitter``, ``GammaGammaFitter``, ``conditional_probability_alive``,
   ``conditional_expected_number_of_purchases_up_to_time``, ``conditional_expected_average_
   profit`` and ``customer_lifetime_value``
   (``time=12`` months, ``freq="W"``). lifetimes does not install beside numpy 2 / pandas 3, so it
   runs in a venv of its own (``--lifetimes-venv``, default ``~/.cache/cxloop-bench/lifetimes``,
   created on first use with numpy 1.26.4, pandas 1.5.3, scipy 1.11.4, autograd 1.6.2 from PyPI);
   it is never a dependency of cxloop.
3. **Agreement first**: the fitted parameters of both must agree to 1e-3 relative.
4. A table per data set — seconds for the fits, for the predictions and in all, and lifetimes ÷
   cxloop — and JSON in ``benchmarks/results/value.json``. Exit status 1 when a target is
   missed: cxloop >= 10x faster than lifetimes in all (fit + predictions), 1M customers in < 5 s,
   parameters equal to 1e-3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT.parent / "shared" / "data" / "cdnow" / "cdnow_customers_summary_with_transactions.csv"
DEFAULT_VENV = Path.home() / ".cache" / "cxloop-bench" / "lifetimes"
PINS = ["numpy==1.26.4", "pandas==1.5.3", "scipy==1.11.4", "autograd==1.6.2", "dill", "lifetimes==0.11.3"]
TARGET_SPEEDUP = 10.0
TARGET_1M_SECONDS = 5.0
RTOL = 1e-3
SEED = 42
BG = ("r", "alpha", "a", "b")
GG = ("p", "q", "gamma")

# The lifetimes case, run by the lifetimes venv's Python: argv[1] the CSV, prints JSON.
LIFETIMES_CASE = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
d = pd.read_csv(sys.argv[1])
x, t, T, m = d["frequency"], d["recency"], d["T"], d["monetary_value"]
runs = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    bg = BetaGeoFitter().fit(x, t, T)
    repeat = (x > 0) & (m > 0)
    gg = GammaGammaFitter().fit(x[repeat], m[repeat])
    fitted = time.perf_counter()
    alive = bg.conditional_probability_alive(x, t, T)
    purchases = bg.conditional_expected_number_of_purchases_up_to_time(365.25 / 7, x, t, T)
    spend = gg.conditional_expected_average_profit(x, m)
    clv = gg.customer_lifetime_value(bg, x, t, T, m, time=12, discount_rate=0.01, freq="W")
    runs.append((fitted - start, time.perf_counter() - fitted))
best = min(runs, key=sum)
params = {**{k: float(v) for k, v in bg.params_.items()},
          **{{"v": "gamma"}.get(k, k): float(v) for k, v in gg.params_.items()}}
print(json.dumps({"fit": best[0], "predict": best[1], "cold": sum(runs[0]), "params": params,
                  "clv_total": float(clv.sum()), "customers": int(len(d))}))
"""


def cxloop_case(path: str, inner: int) -> dict[str, Any]:
    """The cxloop case, in this venv (run as ``python -m benchmarks.value_speed --case FILE``)."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    from cxloop.value.clv import ClvOptions, customer_values
    from cxloop.value.models import fit_models
    from cxloop.value.summary import Summary

    frame = pd.read_csv(path)
    frame["customer_id"] = np.arange(len(frame)).astype(str)
    frame["total_spend"] = 0.0
    frame["last_purchase"] = None
    runs = []
    for _ in range(inner):
        summary = Summary(frame, dt.date(2000, 1, 1), "weeks")  # no unique rows cached yet
        start = time.perf_counter()
        models = fit_models(summary)  # BG/NBD on the unique (x, t_x, T) rows, Gamma-Gamma
        fitted = time.perf_counter()
        values = customer_values(summary, models, ClvOptions(months=12, discount_rate=0.01))
        runs.append((fitted - start, time.perf_counter() - fitted))
    assert np.isfinite(values["clv"]).all()
    bg, gg = models.purchases, models.spend
    best = min(runs, key=sum)
    params = {k: getattr(bg, k) for k in BG} | {k: getattr(gg, k) for k in GG}
    return {
        "fit": best[0],
        "predict": best[1],
        "cold": sum(runs[0]),
        "params": params,
        "clv_total": float(values["clv"].sum()),
        "customers": len(frame),
    }


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {venv} for lifetimes (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
    return python


def write_data(workdir: Path, sizes: list[int]) -> dict[str, Path]:
    import pandas as pd

    from cxloop.value.simulate import bgnbd_customers

    workdir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    if CDNOW.exists():
        path = workdir / "cdnow.csv"
        raw = pd.read_csv(CDNOW)
        raw.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"})[
            ["frequency", "recency", "T", "monetary_value"]
        ].to_csv(path, index=False)
        files["CDNOW (2,357)"] = path
    for n in sizes:
        path = workdir / f"bgnbd-{n}-seed{SEED}.csv"
        if not path.exists():
            bgnbd_customers(n, seed=SEED).to_csv(path, index=False)
        files[f"{n:,} generated"] = path
    return files


def run(command: list[str]) -> dict[str, Any]:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"case failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="generated customers, comma-separated")
    parser.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "cxloop-bench" / "value")
    parser.add_argument("--lifetimes-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest counts")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "value.json")
    parser.add_argument(
        "--inner",
        type=int,
        default=5,
        help="runs inside each case process under 200k customers (fastest counts)",
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(cxloop_case(args.case, args.inner)))
        return 0

    lifetimes_python = ensure_venv(args.lifetimes_venv)
    files = write_data(args.workdir, [int(s) for s in args.sizes.split(",") if s])
    load_before = os.getloadavg()
    results, failed = [], False
    for label, path in files.items():
        cases: dict[str, dict[str, Any]] = {}
        inner = str(args.inner if sum(1 for _ in path.open()) < 200_000 else 1)
        for name, command in (
            (
                "cxloop",
                [sys.executable, "-m", "benchmarks.value_speed", "--inner", inner, "--case", str(path)],
            ),
            ("lifetimes", [str(lifetimes_python), "-c", LIFETIMES_CASE, str(path), inner]),
        ):
            runs = []
            for _ in range(args.repeat):
                load = os.getloadavg()[0]
                runs.append({**run(command), "loadavg_1m_before": load})
            cases[name] = min(runs, key=lambda r: r["fit"] + r["predict"])
        ours, theirs = cases["cxloop"], cases["lifetimes"]
        worst = max(abs(ours["params"][k] / theirs["params"][k] - 1) for k in (*BG, *GG))
        total_ours = ours["fit"] + ours["predict"]
        total_theirs = theirs["fit"] + theirs["predict"]
        speedup = total_theirs / total_ours
        checks = {"params": worst <= RTOL, "speedup": speedup >= TARGET_SPEEDUP}
        if ours["customers"] >= 1_000_000:
            checks["1M under 5 s"] = total_ours < TARGET_1M_SECONDS
        failed |= not all(checks.values())
        results.append(
            {
                "data": label,
                "customers": ours["customers"],
                "cxloop": ours,
                "lifetimes": theirs,
                "fit_speedup": theirs["fit"] / ours["fit"],
                "speedup": speedup,
                "max_param_rel_diff": worst,
                "checks": checks,
            }
        )
        print(
            f"{label:>20}: cxloop fit {ours['fit']:.2f} s + predict {ours['predict']:.2f} s "
            f"= {total_ours:.2f} s; "
            f"lifetimes {theirs['fit']:.2f} + {theirs['predict']:.2f} = {total_theirs:.2f} s; "
            f"{speedup:.1f}x (fit {theirs['fit'] / ours['fit']:.1f}x); params within {worst:.1e}; "
            + ("ok" if all(checks.values()) else f"FAIL {[k for k, v in checks.items() if not v]}"),
            flush=True,
        )
    report = {
        "benchmark": "value_speed",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
