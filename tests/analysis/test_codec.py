"""The analyses' binary messages (``analysis/codec.py``): exact arrays both
ways, hostile messages refused with a 400 and never a 500, the JSON form still
answered to a client that does not ask for the binary one, and the allowed
rounds of a job audited on every node."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import select

from genomenode.analysis.codec import MEDIA_TYPE, decode, encode, pack, unpack
from genomenode.errors import InputError
from genomenode.store.models import AuditEntry
from genomenode.store.node import open_node

WINDOW = {"contig": "1", "start": 1, "end": 2_000_000}


def test_arrays_travel_bit_for_bit():
    generator = np.random.default_rng(3)
    values = generator.normal(size=(7, 3, 3)) * 10.0 ** generator.integers(
        -300, 300, size=(7, 3, 3)
    )
    counts = generator.integers(-(2**62), 2**62, size=11)
    message = unpack(pack({"a": values, "n": counts, "keys": ["1:A:C"], "x": 2}))
    np.testing.assert_array_equal(message["a"], values)
    np.testing.assert_array_equal(message["n"], counts)
    assert message["a"].dtype == np.float64 and message["n"].dtype == np.int64
    assert message["keys"] == ["1:A:C"] and message["x"] == 2
    # decode() takes an unpacked array as it is, and the JSON form as before.
    assert decode(message["a"], field="a") is message["a"]
    np.testing.assert_array_equal(decode(encode(values), field="a"), values)


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"GNA1",
        b"XXXX\x00\x00\x00\x02{}",
        b"GNA1\x00\x00\x10\x00{}",
        b'GNA1\x00\x00\x00\x03{"a',
        b"GNA1\x00\x00\x00\x02[]",
        b'GNA1\x00\x00\x00\x1d{"a":{"$array":["<f8",[4],0]}}' + b"\x00" * 8,
        b'GNA1\x00\x00\x00\x1d{"a":{"$array":["<f4",[1],0]}}' + b"\x00" * 8,
        b'GNA1\x00\x00\x00\x1e{"a":{"$array":["<f8",[-1],0]}}' + b"\x00" * 8,
        b'GNA1\x00\x00\x00\x1b{"a":{"$array":["<f8",[1]]}}' + b"\x00" * 8,
    ],
)
def test_a_malformed_message_is_an_input_error(message):
    with pytest.raises(InputError):
        unpack(message)


def test_the_node_answers_binary_to_whoever_asks_and_json_otherwise(node_client):
    client = node_client()
    body = {
        "model": "logistic",
        "outcome": "ICD10:I25.1",
        "covariates": ["sex"],
        "window": WINDOW,
    }
    as_json = client.post("/analysis/datasets/part-1/glm", json=body)
    assert as_json.status_code == 200 and "json" in as_json.headers["content-type"]
    as_binary = client.post(
        "/analysis/datasets/part-1/glm",
        content=pack(body),
        headers={"content-type": MEDIA_TYPE, "accept": MEDIA_TYPE},
    )
    assert as_binary.headers["content-type"].startswith(MEDIA_TYPE)
    binary = unpack(as_binary.content)
    assert binary["variants"] == as_json.json()["variants"]
    for name in ("information", "score", "log_likelihood"):
        np.testing.assert_array_equal(
            binary[name], decode(as_json.json()[name], field=name)
        )
    hostile = client.post(
        "/analysis/datasets/part-1/glm",
        content=b'GNA1\x00\x00\x00\x1d{"a":{"$array":["<f8",[9],0]}}',
        headers={"content-type": MEDIA_TYPE},
    )
    assert hostile.status_code == 400, hostile.text


def test_every_round_of_a_job_is_audited_on_every_node(network):
    job = network.submit(
        {
            "analysis": "gwas",
            "datasets": ["part-1", "part-2", "part-3"],
            "phenotype": "ICD10:I25.1",
            "model": "logistic",
            "covariates": ["sex"],
            "region": {"contig": "1", "start": 1, "end": 300_000},
        }
    )
    status = network.wait(job["id"])
    assert status["state"] == "COMPLETE", status
    # The null model's rounds and each IRLS round: all of them, each once. The
    # nodes write these entries in batches (AuditWriter, within a fraction of a
    # second), so the last round's may land just after the job completes.
    expected = status["round_trips"] - 1
    for index, directory in enumerate(network.node_dirs, start=1):
        deadline = time.monotonic() + 10
        while True:
            rounds = _allowed_rounds(directory, f"part-{index}", job["id"])
            if len(rounds) >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(rounds) == expected, index


def _allowed_rounds(directory, dataset: str, job_id: str) -> list[AuditEntry]:
    with open_node(directory) as node, node.session() as session:
        rows = session.scalars(
            select(AuditEntry).where(
                AuditEntry.dataset_id == dataset,
                AuditEntry.action == "analyse glm",
                AuditEntry.outcome == "allow",
            )
        ).all()
    return [row for row in rows if row.details.get("job") == job_id]
