"""The one Plotly look of the console: transparent background, compact margins, the system
Chinese fonts. Pages pass only what differs (height, axes, legend)."""

from __future__ import annotations

from typing import Any

FONT = {
    "family": "system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', sans-serif",
    "size": 12,
}


def chart_layout(**extra: Any) -> dict[str, Any]:
    return {
        "margin": {"l": 56, "r": 24, "t": 8, "b": 56},
        "height": 320,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": FONT,
        "legend": {"orientation": "h", "y": -0.25},
        **extra,
    }
