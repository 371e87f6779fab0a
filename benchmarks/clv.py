"""Benchmark siyu's CLV models against lifetimes on simulated customers.

Usage:
    python benchmarks/clv.py [--customers 1000000] [--seed 7] [--repeat 3] [--skip-lifetimes]

Simulates a customer base from BG/NBD + Gamma-Gamma with known parameters, in
days, with recency in whole days as a daily transaction summary would give it.
Then times, for siyu and (if importable) lifetimes on the same data:

* fit: BG/NBD, then Gamma-Gamma on the repeat buyers;
* score: P(alive), expected purchases over 30/90/365 days and 12-month CLV
  (1% monthly discount, 30-day months as in lifetimes' ``freq="D"``) — with
  siyu's ``score_customers``, with lifetimes' individual methods.

The script puts ../src on sys.path itself and needs only numpy, scipy and
pandas, so it runs in a separate virtualenv that has lifetimes but no Django.
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from siyu.insights.clv import (  # noqa: E402
    DAYS_PER_MONTH,
    BetaGeo,
    GammaGamma,
    score_customers,
    simulate_bgnbd,
    simulate_gamma_gamma,
)

TRUE_BGNBD = {"r": 0.25, "alpha": 30.0, "a": 0.8, "b": 2.5}
TRUE_SPEND = {"p": 6.0, "q": 4.0, "gamma": 15.0}
HORIZONS_DAYS = (30.0, 90.0, 365.0)
# CLV months of 30 days, like lifetimes with freq="D", so both compute the same sum.
FREQ_UNIT_DAYS = DAYS_PER_MONTH / 30.0

LIFETIMES_HELP = """\
lifetimes is not importable here, so only siyu was timed. To compare, run the
script from a separate virtualenv (lifetimes 0.11.3 works with current numpy,
scipy and pandas; nothing else from this repo is needed):

    python -m venv /tmp/lifetimes-venv
    /tmp/lifetimes-venv/bin/pip install lifetimes numpy scipy pandas
    /tmp/lifetimes-venv/bin/python benchmarks/clv.py
"""


def timed(fn: Callable[[], Any]) -> tuple[Any, np.ndarray]:
    """Result and (wall, CPU) seconds; CPU time is steadier on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, np.array([time.perf_counter() - wall, time.process_time() - cpu])


def simulate(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    observed = rng.integers(30, 731, n).astype(float)
    frequency, recency, big_t = simulate_bgnbd(n, **TRUE_BGNBD, T=observed, rng=rng)
    monetary = np.round(simulate_gamma_gamma(frequency, **TRUE_SPEND, rng=rng), 2)
    return {
        "frequency": frequency,
        "recency": np.floor(recency),
        "T": big_t,
        "monetary": np.maximum(monetary, 0.01 * (frequency > 0)),
    }


def run_siyu(data: dict[str, np.ndarray]) -> dict[str, Any]:
    x, t_x, big_t, m = data["frequency"], data["recency"], data["T"], data["monetary"]
    bgf, fit_bg = timed(lambda: BetaGeo().fit(x, t_x, big_t))
    ggf, fit_gg = timed(lambda: GammaGamma().fit(x, m))

    def score() -> dict[str, np.ndarray]:
        result = score_customers(
            bgf,
            ggf,
            x,
            t_x,
            big_t,
            m,
            horizons=HORIZONS_DAYS,
            time_months=12,
            discount_rate=0.01,
            freq_unit_days=FREQ_UNIT_DAYS,
        )
        expected = {f"e{days:g}": result.expected_purchases[days] for days in HORIZONS_DAYS}
        return {"p_alive": result.p_alive, **expected, "clv": result.clv}

    scores, score_time = timed(score)
    return {
        "params": {**bgf.params_, **ggf.params_},
        "fit": fit_bg + fit_gg,
        "score": score_time,
        "scores": scores,
    }


def run_lifetimes(data: dict[str, np.ndarray]) -> dict[str, Any]:
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    x, t_x, big_t, m = (pd.Series(data[k]) for k in ("frequency", "recency", "T", "monetary"))
    repeat = x > 0
    bgf, fit_bg = timed(lambda: BetaGeoFitter().fit(x, t_x, big_t))
    ggf, fit_gg = timed(lambda: GammaGammaFitter().fit(x[repeat], m[repeat]))

    def score() -> dict[str, np.ndarray]:
        scores = {"p_alive": np.asarray(bgf.conditional_probability_alive(x, t_x, big_t))}
        for days in HORIZONS_DAYS:
            scores[f"e{days:g}"] = np.asarray(
                bgf.conditional_expected_number_of_purchases_up_to_time(days, x, t_x, big_t)
            )
        scores["clv"] = np.asarray(
            ggf.customer_lifetime_value(
                bgf, x, t_x, big_t, m, time=12, discount_rate=0.01, freq="D"
            )
        )
        return scores

    scores, score_time = timed(score)
    params = {**bgf.params_.to_dict(), **ggf.params_.to_dict()}
    params["gamma"] = params.pop("v")
    return {"params": params, "fit": fit_bg + fit_gg, "score": score_time, "scores": scores}


def best_of(
    run: Callable[[dict[str, np.ndarray]], dict[str, Any]], data: dict[str, np.ndarray], repeat: int
) -> dict[str, Any]:
    """Run ``repeat`` times and keep the fastest time per phase, as timeit does:
    slower runs measure other load on the machine, not the code."""
    results = [run(data) for _ in range(repeat)]
    best = results[-1]
    for phase in ("fit", "score"):
        best[phase] = np.min([result[phase] for result in results], axis=0)
    return best


def report(name: str, result: dict[str, Any]) -> None:
    result["total"] = result["fit"] + result["score"]
    phases = "  ".join(
        f"{phase} {result[phase][0]:6.2f} / {result[phase][1]:6.2f}"
        for phase in ("fit", "score", "total")
    )
    print(f"{name:10s} {phases}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="report the best of N runs")
    parser.add_argument("--skip-lifetimes", action="store_true")
    args = parser.parse_args()

    data, sim_time = timed(lambda: simulate(args.customers, args.seed))
    repeat = int(np.count_nonzero(data["frequency"] > 0))
    print(
        f"Simulated {args.customers:,} customers ({repeat:,} repeat buyers) in {sim_time[0]:.1f} s"
    )
    print("seconds (wall / CPU)")

    siyu = best_of(run_siyu, data, args.repeat)
    report("siyu", siyu)

    lifetimes: dict[str, Any] | None = None
    if not args.skip_lifetimes:
        try:
            import lifetimes as _  # noqa: F401
        except ImportError:
            print(LIFETIMES_HELP)
        else:
            lifetimes = best_of(run_lifetimes, data, args.repeat)
            report("lifetimes", lifetimes)
            for phase in ("fit", "score", "total"):
                ratio = lifetimes[phase] / siyu[phase]
                print(f"speed-up   {phase:5s} {ratio[0]:6.1f}x / {ratio[1]:6.1f}x")
            print("(target: total >= 20x)")

    print(f"\n{'param':6s} {'true':>10s} {'siyu':>10s}", end="")
    print(f" {'lifetimes':>10s} {'rel diff':>10s}" if lifetimes else "")
    for name, true in {**TRUE_BGNBD, **TRUE_SPEND}.items():
        ours = siyu["params"][name]
        print(f"{name:6s} {true:10.4f} {ours:10.4f}", end="")
        if lifetimes:
            theirs = lifetimes["params"][name]
            print(f" {theirs:10.4f} {(ours - theirs) / theirs:10.2e}")
        else:
            print()
    if lifetimes:
        print("\nlargest relative difference in predictions (different fitted params included):")
        for key, ours in siyu["scores"].items():
            theirs = lifetimes["scores"][key]
            finite = np.isfinite(theirs)
            diff = np.abs(ours[finite] - theirs[finite]) / np.maximum(np.abs(theirs[finite]), 1e-12)
            note = (
                f" ({np.count_nonzero(~finite):,} non-finite in lifetimes)"
                if not finite.all()
                else ""
            )
            print(f"  {key:8s} {diff.max():.2e}{note}")


if __name__ == "__main__":
    main()
