"""Allele-frequency bar charts as inline SVG, drawn on the server.

No script draws them: the page is complete as sent, prints, and reads in a
screen reader through the chart's title and description and the table beside
it. Each bar carries its country and frequency as ``data-*`` attributes so the
browser tests check the drawing against numbers computed independently.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from .search import CountryFrequency

__all__ = ["frequency_chart"]

_BAR = 40
_GAP = 28
_SEX_BAR = 14
_LEFT = 48
_TOP = 16
_HEIGHT = 220
_AXIS = 34
_SEX_WORDS = {"F": "female", "M": "male"}


def _escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def frequency_chart(
    variant_id: str, countries: Sequence[CountryFrequency], *, chart_id: str
) -> str:
    """An SVG bar chart: one bar per country (its frequency), with thinner bars
    for females and males where the nodes answered per sex."""
    if not countries:
        return ""
    top = max(
        [0.01]
        + [
            value
            for country in countries
            for value in (
                country.frequency,
                country.female_frequency or 0.0,
                country.male_frequency or 0.0,
            )
        ]
    )
    # A round upper limit: 0.05, 0.1, 0.2, 0.5 or 1.
    limit = next(step for step in (0.05, 0.1, 0.2, 0.5, 1.0) if top <= step)
    group = _BAR + 2 * _SEX_BAR + 4 + _GAP
    width = _LEFT + group * len(countries) + 10
    height = _TOP + _HEIGHT + _AXIS

    def y_of(value: float) -> float:
        return _TOP + _HEIGHT * (1 - min(value, limit) / limit)

    title = f"{chart_id}-title"
    description = f"{chart_id}-desc"
    summary = "; ".join(
        f"{country.country} {country.frequency:.4f}" for country in countries
    )
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-labelledby="{title} {description}" '
        f'data-variant="{_escape(variant_id)}">',
        f'<title id="{title}">Allele frequency of {_escape(variant_id)} by country'
        "</title>",
        f'<desc id="{description}">{_escape(summary)}</desc>',
    ]
    for tick in (0.0, limit / 2, limit):
        y = y_of(tick)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{width - 10}" y1="{y:.1f}" '
            f'y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{tick:g}</text>'
        )
    for index, country in enumerate(countries):
        x = _LEFT + 8 + index * group
        y = y_of(country.frequency)
        parts.append(
            f'<rect class="bar bar-country" x="{x}" y="{y:.1f}" width="{_BAR}" '
            f'height="{_TOP + _HEIGHT - y:.1f}" '
            f'data-country="{_escape(country.country)}" '
            f'data-frequency="{country.frequency:.6f}">'
            f"<title>{_escape(country.country)}: {country.frequency:.4f} "
            f"({country.allele_count} of {country.allele_number} alleles)</title>"
            "</rect>"
        )
        for offset, (sex, value) in enumerate(
            (("F", country.female_frequency), ("M", country.male_frequency))
        ):
            if value is None:
                continue
            sex_x = x + _BAR + 2 + offset * (_SEX_BAR + 2)
            sex_y = y_of(value)
            parts.append(
                f'<rect class="bar bar-sex bar-{sex.lower()}" x="{sex_x}" '
                f'y="{sex_y:.1f}" width="{_SEX_BAR}" '
                f'height="{_TOP + _HEIGHT - sex_y:.1f}" '
                f'data-country="{_escape(country.country)}" data-sex="{sex}" '
                f'data-frequency="{value:.6f}">'
                f"<title>{_escape(country.country)} {_SEX_WORDS[sex]}: "
                f"{value:.4f}</title></rect>"
            )
        parts.append(
            f'<text class="label" x="{x + (_BAR + _SEX_BAR) / 2 + 2}" '
            f'y="{_TOP + _HEIGHT + 18}" text-anchor="middle">'
            f"{_escape(country.country)}</text>"
        )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" x2="{width - 10}" y1="{_TOP + _HEIGHT}" '
        f'y2="{_TOP + _HEIGHT}"/></svg>'
    )
    return "".join(parts)
