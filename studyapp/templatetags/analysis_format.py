"""Number formatting for the analysis tables: one convention for means, intervals and p-values."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def num(value: float | None, digits: int = 3) -> str:
    """A mean or difference to three decimals; an en dash when it cannot be computed yet."""
    return "–" if value is None else f"{value:.{digits}f}"


@register.filter
def pval(value: float | None) -> str:
    """A p-value as journals print it: ``<0.001`` below a thousandth."""
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


@register.simple_tag
def ci(low: float | None, high: float | None) -> str:
    """A confidence interval as ``[low, high]``, or nothing when it is undefined (n < 2)."""
    return "" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"
