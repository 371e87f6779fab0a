"""The known truth behind the demo brand's purchase histories.

Written down so that a fitted CLV model can be checked against it: docs/demo-brand.md gives the
exact definitions (time unit, what counts as a repeat purchase, what the member day moves).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DemoParameters:
    """BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader, Hardie & Lee 2005b) parameters
    in weeks and yuan, plus the knobs that shape everything around them."""

    # BG/NBD: purchase rate λ ~ Gamma(shape r, rate alpha) per week while alive;
    # after each repeat purchase the customer drops out with p ~ Beta(a, b).
    r: float = 1.2
    alpha: float = 2.5
    a: float = 1.2
    b: float = 14.0
    # Gamma-Gamma: each order's paid amount z ~ Gamma(shape spend_p, rate ν) with the customer's
    # ν ~ Gamma(shape spend_q, rate spend_gamma); mean order value = p·γ/(q−1) = ¥70.
    spend_p: float = 6.0
    spend_q: float = 4.0
    spend_gamma: float = 35.0
    #: first_seen_at is spread uniformly over this many weeks before ``today``.
    window_weeks: int = 104
    #: Share of members' repeat purchases moved to the nearest Tuesday (周二会员日).
    member_day_shift: float = 0.2
    #: Member-day price cut on the goods (88折): paid amount stays z, the basket grows.
    member_day_discount: float = 0.12
    refund_share: float = 0.02
    #: Events per contact ~ Poisson(events_base + events_per_order × orders).
    events_base: float = 1.5
    events_per_order: float = 2.8

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEMO_PARAMETERS = DemoParameters()
