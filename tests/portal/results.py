"""What the reference-page tests share: reading a population table off the
page and checking a row against the API's numbers for the same population."""

from __future__ import annotations

import re

import pytest


def population_rows(page: str, table_id: str) -> dict[str, dict[str, str]]:
    """The ``data-*`` attributes of each row of table ``table_id``, by population."""
    table = page.split(f'id="{table_id}"')[1].split("</table>")[0]
    rows = {}
    for attributes in re.findall(r"<tr (data-population=[^>]*)>", table):
        values = dict(re.findall(r'data-([a-z0-9]+)="([^"]*)"', attributes))
        rows[values["population"]] = values
    return rows


def assert_row_shows(row: dict[str, str], item: dict, *, frequency: bool) -> None:
    """``row`` shows the API's ``item``: its counts, FAF95 and whether it was
    adjusted, and (with ``frequency``) its allele frequency."""
    assert int(row["ac"]) == item["alleleCount"]
    assert int(row["an"]) == item["alleleNumber"]
    if frequency:
        assert float(row["af"]) == pytest.approx(item["alleleFrequency"], abs=1e-6)
    assert int(row["hom"]) == item["alleleCountHomozygous"]
    assert int(row["het"]) == item["alleleCountHeterozygous"]
    assert int(row["hemi"]) == item["alleleCountHemizygous"]
    assert float(row["faf95"]) == pytest.approx(item["faf95"], rel=1e-5, abs=1e-12)
    assert (row["adjusted"] == "yes") == item["adjusted"]
