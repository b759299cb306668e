"""The one access decision: who may query which dataset, at what granularity."""

from __future__ import annotations

import logging

import pytest

from genomenode.access import ANONYMOUS, Caller, DatasetAccess, allowed_granularity

REGISTERED = Caller(subject="r", registered=True)
GRANTED = Caller(subject="g", registered=True, granted_datasets=frozenset({"d"}))
GRANTED_ELSEWHERE = Caller(
    subject="o", registered=True, granted_datasets=frozenset({"x"})
)


@pytest.mark.parametrize(
    ("level", "caller", "expected"),
    [
        ("PUBLIC", ANONYMOUS, "boolean"),
        ("PUBLIC", REGISTERED, "count"),
        ("PUBLIC", GRANTED, "record"),
        ("REGISTERED", ANONYMOUS, None),
        ("REGISTERED", REGISTERED, "count"),
        ("REGISTERED", GRANTED, "record"),
        ("CONTROLLED", ANONYMOUS, None),
        ("CONTROLLED", REGISTERED, None),
        ("CONTROLLED", GRANTED_ELSEWHERE, None),
        ("CONTROLLED", GRANTED, "record"),
        ("controlled", GRANTED, "record"),
        ("SECRET", GRANTED, None),  # unknown level: deny
        ("", ANONYMOUS, None),
    ],
)
def test_default_granularities(level, caller, expected):
    assert allowed_granularity(caller, DatasetAccess("d", level)) == expected


def test_dataset_settings_cap_each_kind_of_caller():
    access = DatasetAccess(
        "d",
        "PUBLIC",
        {"anonymous": "count", "registered": "record", "granted": "record"},
    )
    assert allowed_granularity(ANONYMOUS, access) == "count"
    assert allowed_granularity(REGISTERED, access) == "record"


def test_an_unknown_configured_granularity_denies():
    access = DatasetAccess("d", "PUBLIC", {"anonymous": "everything"})
    assert allowed_granularity(ANONYMOUS, access) is None


def test_every_decision_is_logged_without_secrets(caplog):
    with caplog.at_level(logging.DEBUG, logger="genomenode.audit"):
        allowed_granularity(GRANTED, DatasetAccess("d", "CONTROLLED"))
        allowed_granularity(ANONYMOUS, DatasetAccess("d", "CONTROLLED"))
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "access subject=g dataset=d kind=granted decision=record",
        "access subject=- dataset=d kind=anonymous decision=deny",
    ]


def test_a_declared_purpose_admits_analyses_only_where_the_dataset_permits_it():
    from genomenode.access.decision import authorize
    from genomenode.access.duo import DataUseCondition, ResearchPurpose

    conditions = (DataUseCondition("DUO:0000007", "ICD10:I25.1"),)
    open_to_purpose = DatasetAccess(
        "d", "CONTROLLED", analyse_without_grant=True, data_use=conditions
    )
    grants_only = DatasetAccess("d", "CONTROLLED", data_use=conditions)
    fits = ResearchPurpose("DUO:0000007", "ICD10:I25.1")
    other = ResearchPurpose("DUO:0000006")  # health research in general
    with_fit = Caller(subject="r", registered=True, purpose=fits)
    assert authorize(with_fit, "analyse", open_to_purpose).allowed
    assert authorize(with_fit, "analyse", open_to_purpose).granularity == "count"
    # Never more than analyses, never without the dataset's permission, never
    # for a purpose its terms do not allow, never for an anonymous caller.
    assert not authorize(with_fit, "download", open_to_purpose).allowed
    assert not authorize(with_fit, "analyse", grants_only).allowed
    refused = authorize(
        Caller(subject="r", registered=True, purpose=other), "analyse", open_to_purpose
    )
    assert not refused.allowed and "DUO:0000006" in refused.reason
    assert not authorize(Caller(purpose=fits), "analyse", open_to_purpose).allowed
    assert not authorize(REGISTERED, "analyse", open_to_purpose).allowed
    # A grant still decides for the granted, whatever purpose is declared.
    granted = Caller(
        subject="g", registered=True, granted_datasets=frozenset({"d"}), purpose=other
    )
    assert authorize(granted, "analyse", open_to_purpose).allowed
