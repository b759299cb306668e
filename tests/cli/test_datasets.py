"""cli/datasets.py: ``ingest`` (--dry-run), ``datasets`` (scaffold), ``discard``."""

from __future__ import annotations

import pytest

from genomenode.ingest import pipeline
from genomenode.store.node import init_node
from tests.conftest import write_dataset_yaml, write_small_cohort, write_vcf

from .conftest import invoke, invoke_json


@pytest.fixture
def node_dir(tmp_path):
    init_node(tmp_path / "node", node_id="fi-node", country="FI").close()
    return tmp_path / "node"


@pytest.fixture
def cohort(tmp_path):
    return write_small_cohort(tmp_path / "cohort", num_samples=8, num_variants=30)


def test_ingest_then_list(node_dir, cohort):
    assert invoke("datasets", "--node", node_dir).stdout == "No published datasets.\n"
    published = invoke("ingest", "--node", node_dir, cohort).stdout
    assert published.startswith("Published small: 8 individuals, 8 genotyped samples")
    again = invoke_json("ingest", "--node", node_dir, cohort)
    assert again["status"] == "unchanged"

    listed = invoke_json("datasets", "--node", node_dir)
    assert [(row["id"], row["num_samples"]) for row in listed] == [("small", 8)]
    table = invoke("datasets", "--node", node_dir, terminal_width=100).stdout
    assert "Datasets on fi-node" in table and "small" in table


def test_dry_run_says_what_would_happen_and_writes_nothing(node_dir, cohort):
    plan = invoke_json("ingest", "--dry-run", "--node", node_dir, cohort)
    assert (plan["action"], plan["num_samples"], plan["contigs"]) == (
        "publish",
        8,
        ["1", "2"],
    )
    assert not (node_dir / "store" / "staging" / "small").exists()
    assert invoke_json("datasets", "--node", node_dir) == []

    invoke("ingest", "--node", node_dir, cohort)
    unchanged = invoke("ingest", "--dry-run", "--node", node_dir, cohort).stdout
    assert "already published with the same content" in unchanged
    write_dataset_yaml(cohort.parent, id="small", name="Another name")
    refused = invoke("ingest", "--dry-run", "--node", node_dir, cohort, expect=1)
    assert refused.stderr.startswith("error: the ingest would be refused: ")
    assert "already published with different content" in refused.stderr


def test_dry_run_reports_bad_input_as_ingest_would(node_dir, cohort):
    write_dataset_yaml(cohort.parent, id="small", country="Finland")
    bad = invoke("ingest", "--dry-run", "--node", node_dir, cohort, expect=1)
    assert bad.stderr == (
        f"error: {cohort}, field 'country': 'Finland' is not an ISO 3166-1 "
        "alpha-2 code\n"
    )


def test_bad_input_at_a_later_step_says_what_is_true(node_dir, tmp_path):
    directory = tmp_path / "unsorted"
    write_small_cohort(directory, num_samples=3, num_variants=4)
    records = [
        "\t".join(["1", str(position), ".", "A", "G", ".", "PASS", ".", "GT"])
        + "\t0|1" * 3
        for position in (2000, 1000)
    ]
    write_vcf(
        directory / "cohort.vcf.gz",
        records,
        samples=["S000", "S001", "S002"],
        index=False,
    )
    failed = invoke("ingest", "--node", node_dir, directory / "dataset.yaml", expect=1)
    message = failed.stderr
    assert message.startswith("error: ") and "Traceback" not in message
    assert "nothing was published. Fix the input and run the same command again" in (
        message
    )
    assert "The steps done so far (validate" in message
    assert f"genomenode discard --node {node_dir} small" in message
    assert "unchanged work is reused" not in message
    discarded = invoke("discard", "--node", node_dir, "small").stdout
    assert discarded == "Discarded the unpublished ingest of small.\n"
    assert invoke_json("discard", "--node", node_dir, "small")["discarded"] is False


def test_bad_input_at_the_first_step_promises_nothing_to_discard(node_dir, tmp_path):
    directory = tmp_path / "cohort"
    write_small_cohort(directory, num_samples=4, num_variants=10)
    (directory / "cohort.vcf.gz").write_text("##fileformat=VCFv4.2\n")
    failed = invoke("ingest", "--node", node_dir, directory / "dataset.yaml", expect=1)
    assert "cohort.vcf.gz: not compressed: compress it with `bgzip`" in failed.stderr
    assert failed.stderr.rstrip().endswith(
        "nothing was published. Fix the input and run the same command again."
    )
    assert "discard" not in failed.stderr


def test_clinical_records_not_matching_the_samples_stop_the_ingest(node_dir, tmp_path):
    # The clinical records are read beside the conversion, after validate: the
    # message names the file and says what waits; the fixed input starts over.
    directory = tmp_path / "cohort"
    write_small_cohort(directory, num_samples=4, num_variants=10)
    individuals = directory / "individuals.json"
    kept = individuals.read_text()
    individuals.write_text("[]")
    failed = invoke("ingest", "--node", node_dir, directory / "dataset.yaml", expect=1)
    assert failed.stderr.startswith(f"error: {individuals}: 4 genotyped sample(s)")
    assert "have no clinical record" in failed.stderr
    assert "nothing was published" in failed.stderr
    done = failed.stderr.split("The steps done so far (")[1].split(")")[0]
    assert "validate" in done.split(", ") and "clinical" not in done.split(", ")
    individuals.write_text(kept)
    published = invoke("ingest", "--node", node_dir, directory / "dataset.yaml").stdout
    assert published.startswith("Published small: 4 individuals, 4 genotyped")


def test_ctrl_c_says_that_the_ingest_resumes(node_dir, cohort, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "ingest", interrupted)
    stopped = invoke("ingest", "--node", node_dir, cohort, expect=130)
    assert "Interrupted: nothing was published" in stopped.stderr
    assert "Run the same command again to resume where it stopped" in stopped.stderr


def test_scaffold_then_ingest(node_dir, cohort, tmp_path):
    vcf = cohort.parent / "cohort.vcf.gz"
    out = tmp_path / "mine" / "dataset.yaml"
    written = invoke_json("datasets", "scaffold", vcf, "--out", out)
    assert written["to_fill"] == ["country", "contact.name", "contact.email"]
    assert written["num_samples"] == 8 and written["contigs"] == ["1", "2"]
    template = (tmp_path / "mine" / "clinical.csv").read_text().splitlines()
    assert template[0] == "id,sex,age,country_of_birth,phenotypes,diseases,ethnicity"
    assert len(template) == 9 and template[1].startswith("S000,unknown,")
    # TODO is refused until it is filled in.
    todo = invoke("ingest", "--dry-run", "--node", node_dir, out, expect=1)
    assert "field 'country': 'TODO'" in todo.stderr
    out.write_text(
        out.read_text()
        .replace("country: TODO", "country: FI")
        .replace('name: "TODO"', 'name: "Steward"')
        .replace('email: "TODO"', 'email: "steward@example.org"')
    )
    assert invoke_json("ingest", "--dry-run", "--node", node_dir, out)["action"] == (
        "publish"
    )
    published = invoke_json("ingest", "--node", node_dir, out)
    assert (published["dataset_id"], published["num_samples"]) == ("cohort", 8)
    again = invoke("datasets", "scaffold", vcf, "--out", out, expect=1)
    assert "already exists; a scaffold never overwrites" in again.stderr


def test_scaffold_maps_a_csv_by_its_header(tmp_path, cohort):
    clinical = tmp_path / "clinical.csv"
    clinical.write_text("ID,Sex,hpo\nS000,female,HP:0001627\n")
    written = invoke_json(
        "datasets",
        "scaffold",
        cohort.parent / "cohort.vcf.gz",
        *("--out", tmp_path / "d.yaml", "--clinical", clinical, "--country", "FI"),
    )
    assert written["clinical_template"] is None
    assert written["to_fill"] == ["contact.name", "contact.email"]
    text = (tmp_path / "d.yaml").read_text()
    assert 'id: "ID"' in text and 'sex: "Sex"' in text and "country: FI" in text
