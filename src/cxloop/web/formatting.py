"""Numbers for people: a KPI value in its unit, a change with its sign, money in the business's currency."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "BRL": "R$",
    "JPY": "¥",
    "INR": "₹",
    "CAD": "CA$",
    "AUD": "A$",
    "CHF": "CHF ",
    "CNY": "CN¥",
    "MXN": "MX$",
}
COUNTS = {"customers", "orders", "responses", "tickets", "mentions"}


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Formatter:
    """Formats values in a KPI's unit; ``currency`` is an ISO 4217 code (the business setting)."""

    currency: str = "USD"

    def money(self, value: float, decimals: int = 2) -> str:
        symbol = SYMBOLS.get(self.currency.upper())
        sign = "-" if value < 0 else ""
        amount = f"{abs(value):,.{decimals}f}"
        return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {self.currency.upper()}"

    def value(self, value: Any, unit: str) -> str:
        """``value`` in ``unit``; an em dash when there is none."""
        if missing(value):
            return "—"
        v = float(value)
        if unit == "%":
            return f"{v:.1f}%"
        if unit == "currency":
            return self.money(v)
        if unit in COUNTS:
            return f"{v:,.0f}"
        if unit == "hours":
            return f"{v:,.1f} h"
        if unit == "points":
            return f"{v:.1f}"
        return f"{v:,.2f}"

    def change(self, value: Any, unit: str) -> str:
        """A change with its sign; percentages change in points (pp)."""
        if missing(value):
            return "—"
        v = float(value)
        sign = "+" if v > 0 else ("−" if v < 0 else "±")
        magnitude = self.value(abs(v), unit)
        if unit == "%":
            magnitude = f"{abs(v):.1f} pp"
        return f"{sign}{magnitude}"

    def interval(self, low: Any, high: Any, unit: str) -> str:
        if missing(low) or missing(high):
            return ""
        return f"{self.value(low, unit)} to {self.value(high, unit)}"
