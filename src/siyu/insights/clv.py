"""Buy-till-you-die customer-lifetime-value models as plain numerics.

Three classic models, fitted by maximum likelihood on per-customer summaries:

* :class:`BetaGeo` — BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers
  the Easy Way"): how many repeat purchases a customer makes and whether they
  are still "alive".
* :class:`ParetoNBD` — Pareto/NBD (Schmittlein, Morrison & Colombo 1987), with
  the likelihood from Fader & Hardie's note "A Note on Deriving the Pareto/NBD
  Model and Related Expressions" (2005).
* :class:`GammaGamma` — Fader & Hardie's Gamma-Gamma spend model, which turns
  a customer's average order value into an expected future order value.

The module deliberately has no Django dependency: the web app fits it inside a
background task on millions of customers, the demo-data generator reuses the
simulators, and the benchmark runs it in a bare virtualenv.

Inputs follow the ``lifetimes`` conventions so results can be compared:
``frequency`` (x) is the number of *repeat* purchase occasions, ``recency``
(t_x) the time of the last purchase measured from the first one, ``T`` the time
from the first purchase to the end of observation, all in one time unit (days
or weeks); the scale parameters ``alpha`` and ``beta`` come out in that unit.

Everything is computed in log space (``gammaln``, ``betaln``, ``logaddexp``,
``log1p``) so that long histories (large T) and heavy buyers (large x) never
overflow. For speed at a million customers, every term is evaluated at the
coarsest level it depends on: per distinct x, per distinct T or per distinct
(x, T) pair, and per customer only where recency enters.
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Literal, Protocol, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, exprel, gammaln, hyp2f1

FloatArray = NDArray[np.float64]
DateLike = str | date | datetime | np.datetime64 | pd.Timestamp

#: Fewest (weighted) repeat buyers a fit accepts. Without repeat purchases the
#: likelihood carries no information about purchase rates or dropout, and the
#: optimiser would wander off to a boundary; the web layer may demand more.
MIN_REPEAT_BUYERS = 2

#: Average month length, used to turn CLV horizons in months into model time.
DAYS_PER_MONTH = 365.25 / 12

#: Churn-risk bands over P(alive): below 0.3 the customer is far more likely
#: gone than active ("high" risk); from 0.7 up they are very probably still
#: buying ("low"); in between the model cannot tell well ("medium").
CHURN_HIGH_BELOW = 0.3
CHURN_LOW_AT_OR_ABOVE = 0.7

# Parameters are optimised as logs inside +-ln(1e8). A parameter that runs to
# this edge means the data do not identify the model, which we report instead
# of returning a meaningless estimate.
_LOG_PARAM_BOUND = math.log(1e8)

# The BG/NBD expectation has a removable singularity at a = 1; evaluating it at
# 1 + 1e-6 instead changes the result by O(1e-6) relative and keeps it finite.
_A_NEAR_ONE = 1e-6


class ModelFitError(ValueError):
    """The data cannot support a model fit; the message says why in plain words."""


class TransactionModel(Protocol):
    """What CLV and :func:`score_customers` need from BG/NBD or Pareto/NBD."""

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...

    def expected_purchases_if_alive(
        self, t: ArrayLike, frequency: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...


# --------------------------------------------------------------------------
# Input checking and data preparation
# --------------------------------------------------------------------------


def _rft_arrays(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    error: type[ValueError] = ValueError,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Broadcast and validate (x, t_x, T), raising ``error`` with a readable message."""
    try:
        x, t_x, big_t = np.broadcast_arrays(
            *(np.asarray(v, dtype=float) for v in (frequency, recency, T))
        )
    except ValueError as exc:
        raise error(
            f"frequency, recency and T must be numbers of matching length ({exc})."
        ) from exc
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(big_t).all()):
        raise error("frequency, recency and T must be finite numbers (no NaN or infinity).")
    if (x < 0).any() or (t_x < 0).any() or (big_t < 0).any():
        raise error("frequency, recency and T must not be negative.")
    if (x != np.floor(x)).any():
        raise error("frequency counts repeat purchases and must be a whole number.")
    late = int(np.count_nonzero(t_x > big_t))
    if late:
        raise error(
            f"recency is greater than T for {late} customer(s); both are measured from the "
            "first purchase, so the last purchase cannot come after the end of observation."
        )
    stray = int(np.count_nonzero((x == 0) & (t_x > 0)))
    if stray:
        raise error(
            f"{stray} customer(s) have frequency 0 but a positive recency; recency is the time "
            "of the last repeat purchase and must be 0 when there is none."
        )
    return x, t_x, big_t


def _horizon(t: ArrayLike) -> FloatArray:
    """Validate a prediction horizon (same time unit as T)."""
    horizon = np.asarray(t, dtype=float)
    if not np.isfinite(horizon).all() or (horizon < 0).any():
        raise ValueError("The prediction horizon t must be a finite, non-negative number.")
    return horizon


def _fit_weights(weights: ArrayLike | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ModelFitError(f"weights must have one entry per row ({n}), got shape {w.shape}.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ModelFitError("weights must be finite and non-negative (they count identical rows).")
    return w


def _require_repeat_buyers(x: FloatArray, w: FloatArray, model_name: str) -> None:
    n_repeat = float(w[x > 0].sum())
    if n_repeat < MIN_REPEAT_BUYERS:
        raise ModelFitError(
            f"Only {n_repeat:g} customers made a repeat purchase; at least "
            f"{MIN_REPEAT_BUYERS} are needed to fit {model_name}."
        )


def _fit_rows(
    model_name: str,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Validated, flattened (x, t_x, T, weights) for fitting a transaction model."""
    x, t_x, big_t = (v.ravel() for v in _rft_arrays(frequency, recency, T, ModelFitError))
    if x.size == 0:
        raise ModelFitError(f"Cannot fit {model_name} on an empty data set.")
    w = _fit_weights(weights, x.size)
    _require_repeat_buyers(x, w, model_name)
    return x, t_x, big_t, w


def _dot(a: FloatArray, b: FloatArray) -> float:
    """Inner product of two vectors without BLAS.

    OpenBLAS runs ``a @ b`` on several threads, whose start-up and spinning cost
    more than the product itself at these sizes (measured 8x the CPU time on a
    busy two-core machine); einsum's own loop is single-threaded.
    """
    return float(np.einsum("i,i->", a, b))


def _grouped_weights(keys: FloatArray, *weights: FloatArray) -> tuple[FloatArray, ...]:
    """Distinct values of ``keys`` and, for each weight array, its total per value."""
    codes, values = pd.factorize(keys)
    return values, *(np.bincount(codes, weights=w, minlength=values.size) for w in weights)


def _unique_pairs(
    first: FloatArray, second: FloatArray
) -> tuple[NDArray[np.intp], FloatArray, FloatArray]:
    """Codes into the distinct (first, second) pairs, and those pairs.

    Each column is hashed on its own and the two codes are combined into one
    integer key: measured faster than hashing complex or tuple keys.
    """
    first_codes, first_values = pd.factorize(first.ravel())
    second_codes, second_values = pd.factorize(second.ravel())
    n_second = np.int64(second_values.size)
    codes, keys = pd.factorize(first_codes * n_second + second_codes)
    return (
        codes.reshape(first.shape),
        first_values[keys // n_second],
        second_values[keys % n_second],
    )


def _maximum_likelihood(
    model_name: str,
    names: tuple[str, ...],
    objective: Callable[..., Any],
    theta0: FloatArray,
    data: Any,
    jac: bool | str,
) -> tuple[FloatArray, float]:
    """Minimise a mean negative log-likelihood over log-parameters with L-BFGS-B.

    Log-parameters keep every parameter positive without constraints; the mean
    (rather than the sum) keeps gradient tolerances independent of sample size.
    """
    result = minimize(
        objective,
        theta0,
        args=(data,),
        jac=jac,
        method="L-BFGS-B",
        bounds=[(-_LOG_PARAM_BOUND, _LOG_PARAM_BOUND)] * len(names),
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
    )
    theta = np.asarray(result.x, dtype=float)
    if not (np.isfinite(theta).all() and np.isfinite(result.fun)):
        raise ModelFitError(f"The {model_name} fit failed numerically ({result.message}).")
    at_edge = [
        name
        for name, value in zip(names, theta, strict=True)
        if abs(value) > _LOG_PARAM_BOUND - 1e-3
    ]
    if at_edge:
        raise ModelFitError(
            f"The {model_name} fit did not converge: parameter(s) {', '.join(at_edge)} ran to the "
            "edge of the allowed range. The data do not pin the model down (typically too few "
            "repeat purchases or too little sign of customers dropping out); collect more "
            "history before fitting."
        )
    if not result.success and np.max(np.abs(result.jac)) > 1e-4:
        raise ModelFitError(f"The {model_name} fit did not converge ({result.message}).")
    return theta, float(result.fun)


# --------------------------------------------------------------------------
# Model base classes
# --------------------------------------------------------------------------


class _Model:
    """Parameter storage shared by the models.

    Models can be built from stored parameters (``BetaGeo(params={...})``) so a
    fit persisted by the web app can score customers without refitting.
    """

    model_name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]

    def __init__(self, params: Mapping[str, float] | None = None) -> None:
        self.params_: dict[str, float] | None = None
        self.log_likelihood_: float | None = None
        if params is not None:
            if set(params) != set(self.param_names):
                raise ValueError(
                    f"{self.model_name} needs exactly the parameters {', '.join(self.param_names)}."
                )
            values = {name: float(params[name]) for name in self.param_names}
            if not all(math.isfinite(v) and v > 0 for v in values.values()):
                raise ValueError(f"{self.model_name} parameters must be positive finite numbers.")
            self.params_ = values

    def __repr__(self) -> str:
        if self.params_ is None:
            return f"{type(self).__name__}(unfitted)"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{type(self).__name__}({shown})"

    def _values(self) -> tuple[float, ...]:
        if self.params_ is None:
            raise RuntimeError(
                f"The {self.model_name} model has no parameters yet; call fit() or pass params=."
            )
        return tuple(self.params_[name] for name in self.param_names)

    def _store(self, theta: FloatArray, mean_nll: float, total_weight: float) -> None:
        self.params_ = {
            name: float(v) for name, v in zip(self.param_names, np.exp(theta), strict=True)
        }
        self.log_likelihood_ = -mean_nll * total_weight


class _TransactionModel(_Model, ABC):
    """Shared prediction API of BG/NBD and Pareto/NBD.

    In both models the expected purchases in (T, T + t] factor into
    P(alive | x, t_x, T) times the expectation for a customer known to be alive
    at T, which depends on x and T only. Subclasses provide the two factors on
    validated arrays; keeping them apart lets CLV compute P(alive) once and the
    monthly expectations once per distinct (x, T).
    """

    @abstractmethod
    def _p_alive(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray: ...

    @abstractmethod
    def _if_alive(self, t: FloatArray, x: FloatArray, T: FloatArray) -> FloatArray: ...

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(still active at T | x, t_x, T)."""
        return self._p_alive(*_rft_arrays(frequency, recency, T))

    def expected_purchases_if_alive(
        self, t: ArrayLike, frequency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected purchases in (T, T + t] for a customer known to be active at T."""
        x, _, big_t = _rft_arrays(frequency, 0.0, T)
        return self._if_alive(_horizon(t), x, big_t)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected purchases in (T, T + t] given the customer's history."""
        x, t_x, big_t = _rft_arrays(frequency, recency, T)
        return self._p_alive(x, t_x, big_t) * self._if_alive(_horizon(t), x, big_t)

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> FloatArray:
        """Expected purchases in (0, t] for a new customer: the conditional one at x = T = 0."""
        return self.conditional_expected_number_of_purchases_up_to_time(t, 0.0, 0.0, 0.0)


# --------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _BGNBDData:
    """BG/NBD fitting data arranged by what each likelihood term depends on.

    Terms in x alone are summed per distinct x, the -(r+x) ln(alpha+T) term per
    distinct T, and only the dropout term, which needs recency, per row and only
    for repeat buyers. Customers without a repeat purchase then cost nothing
    per row, whatever their number.
    """

    total: float
    x_values: FloatArray
    x_weight: FloatArray
    t_values: FloatArray
    t_weight: FloatArray
    t_x_weight: FloatArray
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    w: FloatArray

    @classmethod
    def build(cls, x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray) -> Self:
        repeat = (x > 0) & (w > 0)
        x_values, x_weight = _grouped_weights(x, w)
        t_values, t_weight, t_x_weight = _grouped_weights(T, w, w * x)
        return cls(
            float(w.sum()),
            x_values,
            x_weight,
            t_values,
            t_weight,
            t_x_weight,
            x[repeat],
            t_x[repeat],
            T[repeat],
            w[repeat],
        )


def _bgnbd_log_d(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """ln D, where P(alive | x, t_x, T) = 1 / (1 + D) (FHL 2005, eq. 13).

    D = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) for x > 0 and
    0 for x = 0 (a customer can only drop out right after a repeat purchase).
    In logs it stays finite however large x and T are.
    """
    b_x1 = b + np.maximum(x - 1.0, 0.0)
    log_d = np.log(a) - np.log(b_x1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, log_d, -np.inf)


def _bgnbd_if_alive(
    r: float, alpha: float, a: float, b: float, t: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    """Expected purchases in (T, T + t] for an active customer: FHL eq. 10 without P(alive).

    The published form multiplies ((alpha+T)/(alpha+T+t))^(r+x) by
    2F1(r+x, b+x; a+b+x-1; z), which overflows for heavy buyers. Euler's
    transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the
    product into (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose arguments stay
    small for any x, with z = t / (alpha + T + t).
    """
    a_ = a if abs(a - 1.0) > _A_NEAR_ONE else 1.0 + _A_NEAR_ONE
    z = t / (alpha + T + t)
    log_scale = (a_ - 1.0) * np.log1p(-z)
    hyp = hyp2f1(a_ + b - 1.0 - r, a_ - 1.0, a_ + b + x - 1.0, z)
    # 1 - (1-z)^(a-1) F, written so that no digits are lost when F is close to 1.
    bracket = -np.expm1(log_scale) - np.exp(log_scale) * (hyp - 1.0)
    return (a_ + b + x - 1.0) / (a_ - 1.0) * bracket


def _bgnbd_objective(theta: FloatArray, data: _BGNBDData) -> tuple[float, FloatArray]:
    """Mean negative BG/NBD log-likelihood and its analytic gradient in log-parameters.

    Per customer (FHL 2005 eq. 6, with B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1)):

        l = lnG(r+x) - lnG(r) + r ln(alpha) + lnB(a, b+x) - lnB(a, b)
            - (r+x) ln(alpha+T) + ln(1 + D)

    with D from :func:`_bgnbd_log_d`. The derivative of ln(1 + D) with respect
    to ln D is D / (1 + D) = P(dropped out | data).
    """
    r, alpha, a, b = np.exp(theta)
    d = data

    # Terms in x alone, once per distinct x.
    rx_v = r + d.x_values
    abx_v = digamma(a + b + d.x_values)
    ll = _dot(d.x_weight, gammaln(rx_v) + betaln(a, b + d.x_values)) + d.total * (
        r * np.log(alpha) - gammaln(r) - betaln(a, b)
    )
    d_r = _dot(d.x_weight, digamma(rx_v)) + d.total * (np.log(alpha) - digamma(r))
    d_alpha = d.total * r / alpha
    d_a = d.total * digamma(a + b) - _dot(d.x_weight, abx_v)
    d_b = _dot(d.x_weight, digamma(b + d.x_values) - abx_v) + d.total * (
        digamma(a + b) - digamma(b)
    )

    # -(r + x) ln(alpha + T), once per distinct T.
    log_at_v = np.log(alpha + d.t_values)
    rx_weight = r * d.t_weight + d.t_x_weight
    ll -= _dot(rx_weight, log_at_v)
    d_r -= _dot(d.t_weight, log_at_v)
    d_alpha -= _dot(rx_weight, 1.0 / (alpha + d.t_values))

    # ln(1 + D), per repeat buyer.
    rx = r + d.x
    log_ratio = np.log(alpha + d.T) - np.log(alpha + d.t_x)
    log_d = np.log(a) - np.log(b + d.x - 1.0) + rx * log_ratio
    # ln(1 + D) as max(ln D, 0) + ln(1 + exp(-|ln D|)): stable for either sign
    # and several times faster than np.logaddexp.
    ll += _dot(d.w, np.maximum(log_d, 0.0) + np.log1p(np.exp(-np.abs(log_d))))
    dead = d.w * expit(log_d)
    d_r += _dot(dead, log_ratio)
    d_alpha += _dot(dead, rx * (d.t_x - d.T) / ((alpha + d.T) * (alpha + d.t_x)))
    d_a += dead.sum() / a
    d_b -= _dot(dead, 1.0 / (b + d.x - 1.0))

    gradient = np.array([d_r, d_alpha, d_a, d_b]) * np.array([r, alpha, a, b])
    return -ll / d.total, -gradient / d.total


class BetaGeo(_TransactionModel):
    """BG/NBD: Poisson purchasing while alive, dropout after each repeat purchase.

    Purchase rates vary across customers as Gamma(r, alpha), dropout
    probabilities as Beta(a, b). Preferred over Pareto/NBD in practice because
    it fits about as well and its likelihood needs no hypergeometric function.
    P(alive) is exactly 1 for customers without a repeat purchase.
    """

    model_name = "BG/NBD"
    param_names = ("r", "alpha", "a", "b")

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Fit by maximum likelihood; ``weights`` count identical rows if pre-aggregated.

        Raises :class:`ModelFitError` with a readable reason when the data cannot
        support a fit (empty, invalid, or too few repeat buyers).
        """
        x, t_x, big_t, w = _fit_rows(self.model_name, frequency, recency, T, weights)
        # Start from r = a = b = 1 and alpha matching the observed purchase rate.
        theta0 = np.log([1.0, _dot(w, big_t) / _dot(w, x), 1.0, 1.0])
        theta, mean_nll = _maximum_likelihood(
            self.model_name,
            self.param_names,
            _bgnbd_objective,
            theta0,
            _BGNBDData.build(x, t_x, big_t, w),
            jac=True,
        )
        self._store(theta, mean_nll, float(w.sum()))
        return self

    def _p_alive(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        r, alpha, a, b = self._values()
        # 1 / (1 + D), which is exactly 1 where ln D = -inf (no repeat purchase).
        return expit(-_bgnbd_log_d(r, alpha, a, b, x, t_x, T))

    def _if_alive(self, t: FloatArray, x: FloatArray, T: FloatArray) -> FloatArray:
        # With a single horizon, evaluate once per distinct (x, T): the
        # hypergeometric function dominates the cost and depends on nothing else.
        if t.ndim == 0:
            codes, pair_x, pair_t = _unique_pairs(x, T)
            return _bgnbd_if_alive(*self._values(), t, pair_x, pair_t)[codes]
        return _bgnbd_if_alive(*self._values(), t, x, T)


# --------------------------------------------------------------------------
# Pareto/NBD
# --------------------------------------------------------------------------


def _pareto_log_terms(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Log pieces of the Pareto/NBD likelihood (Fader & Hardie 2005 note, eq. 22).

    Returns (common, alive, dead) with

        L = exp(common) * (exp(alive) + exp(dead)),
        alive = -(r+x) ln(alpha+T) - s ln(beta+T)        (still active at T)
        dead  = ln(s / (r+s+x)) + ln A0                   (dropped out in (t_x, T])

    so ln L = common + logaddexp(alive, dead) and P(alive) = exp(alive - logaddexp).

    A0 = g(t_x) - g(T) uses 2F1(r+s+x, s+1; r+s+x+1; (alpha-beta)/(alpha+t)) when
    alpha >= beta and 2F1(r+s+x, r+x; r+s+x+1; (beta-alpha)/(beta+t)) otherwise, so
    that the argument lies in [0, 1). Euler's transformation rewrites both as
    2F1(1, .; r+s+x+1; z) times powers that fold into the log: the first becomes
    2F1(1, r+x; ...) / ((alpha+t)^(r+x) (beta+t)^s), the second
    2F1(1, s+1; ...) / ((alpha+t)^(r+x-1) (beta+t)^(s+1)). The transformed series
    stay bounded for large x, where the originals overflow.
    """
    rx = r + x
    c = rx + s + 1.0
    common = gammaln(rx) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -rx * np.log(alpha + T) - s * np.log(beta + T)

    def log_g(t: FloatArray) -> FloatArray:
        if alpha >= beta:
            hyp = hyp2f1(1.0, rx, c, (alpha - beta) / (alpha + t))
            return np.log(hyp) - rx * np.log(alpha + t) - s * np.log(beta + t)
        hyp = hyp2f1(1.0, s + 1.0, c, (beta - alpha) / (beta + t))
        return np.log(hyp) - (rx - 1.0) * np.log(alpha + t) - (s + 1.0) * np.log(beta + t)

    upper = log_g(t_x)
    with np.errstate(divide="ignore"):
        # A0 = g(t_x) - g(T) >= 0; it is 0 (log -inf) when t_x == T.
        log_a0 = upper + np.log(-np.expm1(np.minimum(log_g(T) - upper, 0.0)))
    dead = np.log(s / (rx + s)) + log_a0
    return common, alive, dead


@dataclass(frozen=True)
class _ParetoData:
    """Pareto/NBD fitting data (the hypergeometric terms leave nothing to pre-aggregate)."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    w: FloatArray


def _pareto_objective(theta: FloatArray, data: _ParetoData) -> float:
    """Mean negative Pareto/NBD log-likelihood (gradient left to finite differences)."""
    r, alpha, s, beta = np.exp(theta)
    common, alive, dead = _pareto_log_terms(r, alpha, s, beta, data.x, data.t_x, data.T)
    return -_dot(data.w, common + np.logaddexp(alive, dead)) / data.w.sum()


class ParetoNBD(_TransactionModel):
    """Pareto/NBD: Poisson purchasing, exponential lifetimes, gamma heterogeneity on both.

    Purchase rates are Gamma(r, alpha) and dropout rates Gamma(s, beta) across
    customers. Unlike BG/NBD a customer can drop out at any moment, so even
    customers without a repeat purchase have P(alive) < 1.
    """

    model_name = "Pareto/NBD"
    param_names = ("r", "alpha", "s", "beta")

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Fit by maximum likelihood; ``weights`` count identical rows if pre-aggregated.

        Raises :class:`ModelFitError` with a readable reason when the data cannot
        support a fit.
        """
        x, t_x, big_t, w = _fit_rows(self.model_name, frequency, recency, T, weights)
        # Start from r = s = 1, alpha matching the purchase rate, beta the mean T.
        mean_t = _dot(w, big_t) / w.sum()
        theta0 = np.log([1.0, _dot(w, big_t) / _dot(w, x), 1.0, max(mean_t, 1e-3)])
        theta, mean_nll = _maximum_likelihood(
            self.model_name,
            self.param_names,
            _pareto_objective,
            theta0,
            _ParetoData(x, t_x, big_t, w),
            jac="3-point",
        )
        self._store(theta, mean_nll, float(w.sum()))
        return self

    def _p_alive(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        r, alpha, s, beta = self._values()
        _, alive, dead = _pareto_log_terms(r, alpha, s, beta, x, t_x, T)
        return np.exp(alive - np.logaddexp(alive, dead))

    def _if_alive(self, t: FloatArray, x: FloatArray, T: FloatArray) -> FloatArray:
        """(r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))^(s-1)].

        Evaluated as u * exprel(-(s-1) u) with u = ln(1 + t/(beta+T)) so that
        s = 1 (where the closed form is 0/0) needs no special case.
        """
        r, alpha, s, beta = self._values()
        u = np.log1p(t / (beta + T))
        return (r + x) / (alpha + T) * (beta + T) * u * exprel(-(s - 1.0) * u)


# --------------------------------------------------------------------------
# Gamma-Gamma spend model
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _SpendData:
    """Gamma-Gamma fitting data with everything not involving parameters precomputed.

    Only ln(gamma + m x) must be evaluated per customer at each step; terms in x
    alone are summed per distinct x.
    """

    total: float
    x_values: FloatArray
    x_weight: FloatArray
    sum_x_log_m: float
    sum_log_m: float
    mx: FloatArray
    w: FloatArray
    wx: FloatArray

    @classmethod
    def build(cls, x: FloatArray, m: FloatArray, w: FloatArray) -> Self:
        log_m = np.log(m)
        x_values, x_weight = _grouped_weights(x, w)
        return cls(
            float(w.sum()),
            x_values,
            x_weight,
            _dot(w * x, log_m),
            _dot(w, log_m),
            m * x,
            w,
            w * x,
        )


def _gamma_gamma_objective(theta: FloatArray, data: _SpendData) -> tuple[float, FloatArray]:
    """Mean negative Gamma-Gamma log-likelihood and analytic gradient in log-parameters.

    The average m of x order values, each Gamma(p, nu) with nu ~ Gamma(q, gamma),
    has density

        G(px+q) / (G(px) G(q)) * gamma^q * m^(px-1) * x^(px) / (gamma + m x)^(px+q).
    """
    p, q, g = np.exp(theta)
    d = data

    px_v = p * d.x_values
    psi = digamma(px_v + q)
    x_log_x = d.x_values * np.log(d.x_values)
    ll = (
        _dot(d.x_weight, gammaln(px_v + q) - gammaln(px_v) + p * x_log_x)
        + d.total * (q * np.log(g) - gammaln(q))
        + p * d.sum_x_log_m
        - d.sum_log_m
    )
    d_p = _dot(d.x_weight, d.x_values * (psi - digamma(px_v)) + x_log_x) + d.sum_x_log_m
    d_q = _dot(d.x_weight, psi) + d.total * (np.log(g) - digamma(q))
    d_g = d.total * q / g

    log_gmx = np.log(g + d.mx)
    inverse = 1.0 / (g + d.mx)
    wx_log, w_log = _dot(d.wx, log_gmx), _dot(d.w, log_gmx)
    ll -= p * wx_log + q * w_log
    d_p -= wx_log
    d_q -= w_log
    d_g -= p * _dot(d.wx, inverse) + q * _dot(d.w, inverse)

    gradient = np.array([d_p, d_q, d_g]) * np.array([p, q, g])
    return -ll / d.total, -gradient / d.total


def _spend_arrays(
    frequency: ArrayLike, monetary_value: ArrayLike, error: type[ValueError] = ValueError
) -> tuple[FloatArray, FloatArray]:
    try:
        x, m = np.broadcast_arrays(
            *(np.asarray(v, dtype=float) for v in (frequency, monetary_value))
        )
    except ValueError as exc:
        raise error(
            f"frequency and monetary_value must be numbers of matching length ({exc})."
        ) from exc
    if not (np.isfinite(x).all() and np.isfinite(m).all()):
        raise error("frequency and monetary_value must be finite numbers (no NaN or infinity).")
    if (x < 0).any() or (m < 0).any():
        raise error("frequency and monetary_value must not be negative.")
    return x, m


class GammaGamma(_Model):
    """Gamma-Gamma spend model: a customer's average order value shrunk towards the population.

    Order values are Gamma(p, nu) around a customer-specific nu, and nu varies
    as Gamma(q, gamma). It assumes spend is independent of purchase frequency,
    which is worth checking (a correlation near 0) before trusting CLV figures.
    """

    model_name = "Gamma-Gamma"
    param_names = ("p", "q", "gamma")

    def fit(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Fit on customers with at least one repeat purchase; others are ignored.

        ``monetary_value`` is the mean value of the repeat purchases (as produced
        by :func:`summary_from_transactions`) and must be positive for those
        customers.
        """
        x, m = (v.ravel() for v in _spend_arrays(frequency, monetary_value, ModelFitError))
        if x.size == 0:
            raise ModelFitError(f"Cannot fit {self.model_name} on an empty data set.")
        w = _fit_weights(weights, x.size)
        _require_repeat_buyers(x, w, self.model_name)
        repeat = x > 0
        free = int(np.count_nonzero(repeat & (m <= 0)))
        if free:
            raise ModelFitError(
                f"{free} repeat buyer(s) have a zero average order value; the Gamma-Gamma "
                "model needs positive spend (drop them or the zero-value orders first)."
            )
        x, m, w = x[repeat], m[repeat], w[repeat]
        # Start from p = q = 1 and gamma at the mean order value.
        theta0 = np.log([1.0, 1.0, _dot(w, m) / w.sum()])
        theta, mean_nll = _maximum_likelihood(
            self.model_name,
            self.param_names,
            _gamma_gamma_objective,
            theta0,
            _SpendData.build(x, m, w),
            jac=True,
        )
        self._store(theta, mean_nll, float(w.sum()))
        return self

    def conditional_expected_average_profit(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """Expected value of a future order: p (gamma + m x) / (p x + q - 1).

        A weighted mean of the population mean p gamma / (q - 1) and the
        customer's own average m, trusting m more the more orders it rests on.
        Customers with x = 0 get the population mean.
        """
        p, q, g = self._values()
        x, m = _spend_arrays(frequency, monetary_value)
        denominator = p * x + q - 1.0
        if (denominator <= 0).any():
            raise ValueError(
                f"Expected order value is undefined: the fitted q = {q:.3g} is too small for "
                "the order-value distribution to have a finite mean for some customers."
            )
        return p * (g + m * x) / denominator

    def customer_lifetime_value(
        self,
        transaction_model: TransactionModel,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        monetary_value: ArrayLike,
        *,
        time_months: int = 12,
        discount_rate: float = 0.01,
        freq_unit_days: float = 7.0,
    ) -> FloatArray:
        """Discounted value of the next ``time_months`` months, per customer.

        The same sum as ``lifetimes``: for each month k, the expected purchases
        made during that month (from the transaction model) times the expected
        order value, divided by (1 + discount_rate)^k. ``discount_rate`` is
        monthly; ``freq_unit_days`` is the length in days of the time unit the
        transaction model was fitted in (7 for weeks, 1 for days).

        P(alive) is computed once per customer and the monthly expectations once
        per distinct (frequency, T) pair, which is what makes this cheap.
        """
        x, t_x, big_t, m = np.broadcast_arrays(
            *(np.asarray(v, dtype=float) for v in (frequency, recency, T, monetary_value))
        )
        spend = self.conditional_expected_average_profit(x, m)
        p_alive = transaction_model.conditional_probability_alive(x, t_x, big_t)
        codes, pair_x, pair_t = _unique_pairs(x, big_t)
        discounted = _discounted_purchases_if_alive(
            transaction_model, pair_x, pair_t, time_months, discount_rate, freq_unit_days
        )
        return spend * p_alive * discounted[codes]


def _discounted_purchases_if_alive(
    model: TransactionModel,
    x: FloatArray,
    T: FloatArray,
    time_months: int,
    discount_rate: float,
    freq_unit_days: float,
) -> FloatArray:
    """Sum over months k of the purchases expected in month k, discounted by (1 + rate)^k."""
    if time_months < 1 or discount_rate < 0 or freq_unit_days <= 0:
        raise ValueError(
            "time_months must be at least 1, discount_rate non-negative and "
            "freq_unit_days positive."
        )
    month = DAYS_PER_MONTH / freq_unit_days
    discounted = np.zeros(np.shape(x))
    previous: FloatArray | float = 0.0
    for k in range(1, time_months + 1):
        cumulative = model.expected_purchases_if_alive(k * month, x, T)
        discounted += (cumulative - previous) / (1.0 + discount_rate) ** k
        previous = cumulative
    return discounted


@dataclass(frozen=True)
class CustomerScores:
    """Per-customer results of :func:`score_customers`."""

    p_alive: FloatArray
    churn_risk: NDArray[np.str_]
    expected_purchases: dict[float, FloatArray]
    expected_order_value: FloatArray
    clv: FloatArray


def score_customers(
    transaction_model: TransactionModel,
    spend_model: GammaGamma,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    horizons: Sequence[float],
    time_months: int = 12,
    discount_rate: float = 0.01,
    freq_unit_days: float = 7.0,
) -> CustomerScores:
    """P(alive), churn band, expected purchases per horizon, order value and CLV at once.

    Gives the same numbers as the individual methods, but computes P(alive)
    once per customer and every expectation once per distinct (frequency, T)
    pair instead of once per call, several times faster for a whole customer
    base. ``horizons`` are in the models' time unit; the CLV arguments are those
    of :meth:`GammaGamma.customer_lifetime_value`.
    """
    x, t_x, big_t, m = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (frequency, recency, T, monetary_value))
    )
    p_alive = transaction_model.conditional_probability_alive(x, t_x, big_t)
    order_value = spend_model.conditional_expected_average_profit(x, m)
    codes, pair_x, pair_t = _unique_pairs(x, big_t)
    expected = {
        float(h): p_alive * transaction_model.expected_purchases_if_alive(h, pair_x, pair_t)[codes]
        for h in horizons
    }
    discounted = _discounted_purchases_if_alive(
        transaction_model, pair_x, pair_t, time_months, discount_rate, freq_unit_days
    )
    return CustomerScores(
        p_alive=p_alive,
        churn_risk=churn_risk_band(p_alive),
        expected_purchases=expected,
        expected_order_value=order_value,
        clv=order_value * p_alive * discounted[codes],
    )


# --------------------------------------------------------------------------
# Helpers: churn bands, simulation, transaction summaries
# --------------------------------------------------------------------------


def churn_risk_band(
    p_alive: ArrayLike,
    *,
    high_below: float = CHURN_HIGH_BELOW,
    low_at_or_above: float = CHURN_LOW_AT_OR_ABOVE,
) -> NDArray[np.str_]:
    """Label each P(alive) "high", "medium" or "low" churn risk.

    "high" when P(alive) < ``high_below``, "low" when P(alive) >=
    ``low_at_or_above``, "medium" in between (see the module constants).
    """
    p = np.asarray(p_alive, dtype=float)
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("P(alive) must be a probability between 0 and 1.")
    if not 0 <= high_below <= low_at_or_above <= 1:
        raise ValueError("Churn thresholds must satisfy 0 <= high_below <= low_at_or_above <= 1.")
    return np.where(p < high_below, "high", np.where(p < low_at_or_above, "medium", "low"))


def simulate_bgnbd(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: ArrayLike,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Draw (frequency, recency, T) for ``n`` customers from the BG/NBD model.

    Each customer gets a purchase rate lambda ~ Gamma(r, alpha) and a dropout
    probability p ~ Beta(a, b); they make J ~ Geometric(p) repeat purchases
    before dropping out right after the J-th. With N(T) ~ Poisson(lambda T)
    purchases of the unstopped process, x = min(J, N) and, given N, the x-th
    arrival time is T * Beta(x, N - x + 1) — so no per-customer loop is needed.
    ``T`` is a scalar or one observation length per customer.
    """
    big_t = np.array(np.broadcast_to(np.asarray(T, dtype=float), (n,)))
    rate = rng.gamma(r, 1.0 / alpha, n)
    # Clip so that a Beta draw that underflows to 0 cannot overflow the geometric.
    dropout = np.clip(rng.beta(a, b, n), 1e-12, 1.0)
    lifetime_purchases = rng.geometric(dropout)
    arrivals = rng.poisson(rate * big_t)
    x = np.minimum(lifetime_purchases, arrivals)
    recency = np.zeros(n)
    repeat = x > 0
    recency[repeat] = big_t[repeat] * rng.beta(x[repeat], arrivals[repeat] - x[repeat] + 1)
    return x.astype(float), recency, big_t


def simulate_gamma_gamma(
    frequency: ArrayLike, p: float, q: float, gamma: float, rng: np.random.Generator
) -> FloatArray:
    """Draw each customer's average repeat-order value from the Gamma-Gamma model.

    nu ~ Gamma(q, rate gamma); the mean of x orders Gamma(p, rate nu) is
    Gamma(p x, rate nu x). Customers with frequency 0 get 0, like the summaries.
    """
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(q, 1.0 / gamma, x.shape)
    spend = np.zeros(x.shape)
    repeat = x > 0
    spend[repeat] = rng.gamma(p * x[repeat], 1.0 / (nu[repeat] * x[repeat]))
    return spend


@dataclass(frozen=True)
class RFMSummary:
    """Per-customer model inputs built from a transaction log.

    Holdout fields are set only when a calibration end was given; they count
    purchase days in (calibration_end, observation_end] for validating forecasts.
    """

    customer_id: NDArray[Any]
    frequency: NDArray[np.int64]
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray
    frequency_holdout: NDArray[np.int64] | None = None
    monetary_value_holdout: FloatArray | None = None
    duration_holdout: float | None = None


def _day_numbers(stamps: pd.DatetimeIndex) -> NDArray[np.int64]:
    """Calendar days since 1970-01-01, in the data's own wall-clock time zone."""
    if stamps.tz is not None:
        stamps = stamps.tz_localize(None)
    return stamps.normalize().to_numpy().astype("datetime64[D]").astype(np.int64)


def _end_day(value: DateLike, tz: Any, label: str) -> int:
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        raise ValueError(f"{label} must be a date.")
    if (stamp.tz is None) != (tz is None):
        raise ValueError(
            f"{label} and the transaction dates must both be timezone-aware or both naive."
        )
    if tz is not None:
        stamp = stamp.tz_convert(tz)
    return int(_day_numbers(pd.DatetimeIndex([stamp]))[0])


def summary_from_transactions(
    customer_ids: ArrayLike,
    dates: ArrayLike,
    amounts: ArrayLike,
    observation_end: DateLike,
    freq: Literal["D", "W"] = "D",
    calibration_end: DateLike | None = None,
) -> RFMSummary:
    """Summarise a transaction log into (frequency, recency, T, monetary_value) per customer.

    Transactions are first collapsed to calendar days: several purchases by a
    customer on one day are one purchase occasion whose value is their sum.
    ``freq`` only sets the unit of recency and T — "D" for days, "W" for
    weeks as days / 7 (fractional). That is how Fader & Hardie's CDNOW summary
    was built (and ``lifetimes``' ``freq="D", freq_multiplier=7``); counting
    calendar weeks instead would lose same-week repeat purchases.

    * frequency: purchase days after the first one, up to the calibration end;
    * recency: last purchase day minus first purchase day;
    * T: calibration end minus first purchase day;
    * monetary_value: mean value of the repeat purchase days (0 without any).

    Both ends are inclusive whole days. With ``calibration_end``, customers
    whose first purchase comes later are left out and the holdout fields count
    purchase days in (calibration_end, observation_end]; transactions after
    ``observation_end`` are ignored. Customers come out sorted by id.
    """
    if freq not in ("D", "W"):
        raise ValueError('freq must be "D" (days) or "W" (weeks).')
    unit = 1.0 if freq == "D" else 7.0
    stamps = pd.DatetimeIndex(pd.to_datetime(dates))
    amount = np.asarray(amounts, dtype=float).ravel()
    codes, uniques = pd.factorize(np.asarray(customer_ids).ravel(), sort=True)
    if not (len(codes) == len(stamps) == len(amount)):
        raise ValueError("customer_ids, dates and amounts must have the same length.")
    if len(codes) == 0:
        raise ValueError("No transactions given.")
    if (codes < 0).any() or stamps.isna().any() or not np.isfinite(amount).all():
        raise ValueError("customer_ids, dates and amounts must not contain missing values.")

    end = _end_day(observation_end, stamps.tz, "observation_end")
    cal_end = (
        end if calibration_end is None else _end_day(calibration_end, stamps.tz, "calibration_end")
    )
    if cal_end > end:
        raise ValueError("calibration_end must not be after observation_end.")
    day = _day_numbers(stamps)

    keep = day <= end
    order = np.lexsort((day[keep], codes[keep]))
    codes, day, amount = codes[keep][order], day[keep][order], amount[keep][order]
    if codes.size == 0:
        raise ValueError("No transactions on or before observation_end.")

    # One row per customer and purchase day; rows stay sorted by (customer, day).
    starts = np.flatnonzero(np.r_[True, (codes[1:] != codes[:-1]) | (day[1:] != day[:-1])])
    codes, day, amount = codes[starts], day[starts], np.add.reduceat(amount, starts)

    calibration = day <= cal_end
    c_codes, c_day, c_amount = codes[calibration], day[calibration], amount[calibration]
    if c_codes.size == 0:
        raise ValueError("No transactions on or before calibration_end.")
    first = np.flatnonzero(np.r_[True, c_codes[1:] != c_codes[:-1]])
    last = np.r_[first[1:], c_codes.size] - 1
    frequency = (last - first).astype(np.int64)
    repeat_amount = c_amount.copy()
    repeat_amount[first] = 0.0
    repeat_total = np.add.reduceat(repeat_amount, first)
    first_day = c_day[first]
    summary = {
        "customer_id": np.asarray(uniques)[c_codes[first]],
        "frequency": frequency,
        "recency": (c_day[last] - first_day) / unit,
        "T": (cal_end - first_day) / unit,
        "monetary_value": np.divide(
            repeat_total, frequency, out=np.zeros(first.size), where=frequency > 0
        ),
    }
    if calibration_end is None:
        return RFMSummary(**summary)

    # Holdout purchase days, for customers already acquired in calibration.
    position = np.full(len(uniques), -1)
    position[c_codes[first]] = np.arange(first.size)
    holdout_pos = position[codes[~calibration]]
    known = holdout_pos >= 0
    count = np.bincount(holdout_pos[known], minlength=first.size)
    value = np.bincount(
        holdout_pos[known], weights=amount[~calibration][known], minlength=first.size
    )
    return RFMSummary(
        **summary,
        frequency_holdout=count.astype(np.int64),
        monetary_value_holdout=np.divide(value, count, out=np.zeros(first.size), where=count > 0),
        duration_holdout=(end - cal_end) / unit,
    )
