"""Ingest of aligned reads and of the indexes: stored encrypted, sliceable, named."""

from __future__ import annotations

import json
import os
import signal

import pysam
import pytest
from sqlalchemy import select

from genomenode.dataset import read_dataset_description
from genomenode.errors import DatasetDescriptionError, InputError
from genomenode.ingest import ingest
from genomenode.ingest.run import fingerprint, input_files
from genomenode.store import crypt
from genomenode.store.models import Dataset, StoredFile
from genomenode.store.node import init_node, open_node
from genomenode.transfer.cram import StoredCram
from genomenode.transfer.crypt4gh import Crypt4GHReader
from genomenode.transfer.reads import ReadRegion, StoredReads
from tests.conftest import write_dataset_yaml, write_small_cohort, write_vcf

from ..transfer.test_cram import write_reads, write_reference
from ..transfer.test_reads import write_bam
from .test_resume import _assert_same, _run_ingest, _snapshot, _snapshot_of

REFERENCES = [("1", 200_000), ("2", 100_000)]
RECORDS = [
    "1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0",
    "2\t50\t.\tC\tT\t.\tPASS\t.\tGT\t0/0\t0/1\t0/0",
]


def cohort(directory, *, vcf_index=True):
    """cohort.vcf.gz (samples S1-S3, contigs 1 and 2) and individuals.json."""
    directory.mkdir(parents=True, exist_ok=True)
    write_vcf(directory / "cohort.vcf.gz", RECORDS, index=vcf_index)
    (directory / "individuals.json").write_text(
        json.dumps(
            [
                {"id": sample, "sex": {"id": "NCIT:C17998", "label": "unknown"}}
                for sample in ("S1", "S2", "S3")
            ]
        )
    )
    return directory


def bam(path, *, sample, indexed, seed=1):
    write_bam(
        path,
        seed=seed,
        num_reads=600,
        references=REFERENCES,
        unplaced=10,
        sample=sample,
    )
    if indexed:
        pysam.samtools.index(str(path))
    return path


def stored_files(node, dataset_id):
    with node.session() as session:
        return session.scalars(
            select(StoredFile).where(StoredFile.dataset_id == dataset_id)
        ).all()


def plaintext_reader(node, dataset_id, file):
    key = crypt.read_private_key(node.config.path("private_key"))
    return Crypt4GHReader(node.datasets_dir / dataset_id / file.stored_path, key)


def test_alignments_are_stored_encrypted_with_their_indexes(sqlite_node, tmp_path):
    node = sqlite_node
    directory = cohort(tmp_path / "inputs")
    # One BAM with its index, whose read groups name the sample; one without an
    # index, of a sample the read groups call otherwise.
    supplied = bam(directory / "S1.bam", sample="S1", indexed=True)
    bare = bam(directory / "lane2.bam", sample="NA12878", indexed=False, seed=2)
    dataset = write_dataset_yaml(
        directory,
        id="with-reads",
        alignments=[{"path": "S1.bam"}, {"path": "lane2.bam", "sample": "S2"}],
    )
    content = fingerprint(read_dataset_description(dataset))

    assert ingest(node, dataset).status == "published"

    files = {file.id: file for file in stored_files(node, "with-reads")}
    assert sorted(file.role for file in files.values()) == [
        "alignments",
        "alignments",
        "alignments-index",
        "alignments-index",
        "clinical",
        "description",
        "genotypes",
        "genotypes-index",
    ]
    manifest = node.dataset_manifest("with-reads")
    entries = manifest["alignments"]
    assert [(e["sample"], e["format"], e["reference"]) for e in entries] == [
        ("S1", "BAM", None),
        ("S2", "BAM", None),
    ]
    for entry, original in zip(entries, (supplied, bare), strict=True):
        alignment, index = files[entry["file"]], files[entry["index"]]
        assert (alignment.role, alignment.file_format) == ("alignments", "BAM")
        assert (index.role, index.file_format) == ("alignments-index", "BAI")
        assert (alignment.original_name, index.original_name) == (
            original.name,
            original.name + ".bai",
        )
        stored = node.datasets_dir / "with-reads" / alignment.stored_path
        assert stored.read_bytes()[:8] == b"crypt4gh"
        # Sliced through the decrypting reader only, with the stored index.
        reads = plaintext_reader(node, "with-reads", alignment)
        index_reader = plaintext_reader(node, "with-reads", index)
        assert reads.read(0, reads.plaintext_size) == original.read_bytes()
        slicer = StoredReads(
            reads.read,
            reads.plaintext_size,
            index=index_reader.read(0, index_reader.plaintext_size),
            index_kind="bai",
        )
        indexed_copy = tmp_path / "expected" / original.name
        indexed_copy.parent.mkdir(exist_ok=True)
        indexed_copy.write_bytes(original.read_bytes())
        pysam.samtools.index(str(indexed_copy))
        sliced = tmp_path / "slice.bam"
        sliced.write_bytes(b"".join(slicer.slice([ReadRegion("1", 10_000, 60_000)])))
        assert pysam.samtools.view(str(sliced)) == pysam.samtools.view(
            str(indexed_copy), "1:10001-60000"
        )
    # The operator's index is an input; the one the node made is not, so the
    # fingerprint is that of the inputs alone.
    roles = [role for role, _ in input_files(read_dataset_description(dataset))]
    assert roles.count("alignments-index") == 1
    with node.session() as session:
        assert session.get(Dataset, "with-reads").fingerprint == content
    assert ingest(node, dataset).status == "unchanged"


def test_a_vcf_the_node_indexed_has_its_index_stored(sqlite_node, tmp_path):
    directory = cohort(tmp_path / "inputs", vcf_index=False)
    dataset = write_dataset_yaml(directory, id="node-index")
    description = read_dataset_description(dataset)
    assert "genotypes-index" not in [role for role, _ in input_files(description)]

    ingest(sqlite_node, dataset)

    indexes = [
        file
        for file in stored_files(sqlite_node, "node-index")
        if file.role == "genotypes-index"
    ]
    assert [(f.original_name, f.file_format) for f in indexes] == [
        ("cohort.vcf.gz.csi", "CSI")
    ]
    plain = plaintext_reader(sqlite_node, "node-index", indexes[0])
    copy = tmp_path / "copy" / "cohort.vcf.gz"
    copy.parent.mkdir()
    copy.write_bytes((directory / "cohort.vcf.gz").read_bytes())
    copy.with_name("cohort.vcf.gz.csi").write_bytes(plain.read(0, plain.plaintext_size))
    with pysam.VariantFile(str(copy)) as variants:
        assert [record.pos for record in variants.fetch("2")] == [50]
    with sqlite_node.session() as session:
        stored = session.get(Dataset, "node-index").fingerprint
    assert stored == fingerprint(description)


def test_a_stale_vcf_index_is_stored_as_the_node_remade_it(sqlite_node, tmp_path):
    directory = cohort(tmp_path / "inputs")
    stale = directory / "cohort.vcf.gz.csi"
    os.utime(stale, (1_000_000, 1_000_000))  # older than the VCF
    dataset = write_dataset_yaml(directory, id="stale-index")

    ingest(sqlite_node, dataset)

    roles = [file.role for file in stored_files(sqlite_node, "stale-index")]
    assert roles.count("genotypes-index") == 1


def test_a_cram_is_stored_with_a_crai_and_its_reference(sqlite_node, tmp_path):
    directory = cohort(tmp_path / "inputs")
    fasta = write_reference(directory / "reference.fa", REFERENCES)
    source = write_reads(tmp_path / "S3.bam", num_reads=800, references=REFERENCES)
    cram = directory / "S3.cram"
    pysam.samtools.view(
        "-C",
        "-T",
        str(fasta),
        "--output-fmt-option",
        "seqs_per_slice=100",
        "-o",
        str(cram),
        str(source),
        catch_stdout=False,
    )
    dataset = write_dataset_yaml(
        directory,
        id="cram",
        alignments=[{"path": "S3.cram", "reference": "reference.fa", "sample": "S3"}],
    )
    content = fingerprint(read_dataset_description(dataset))

    ingest(sqlite_node, dataset)

    files = {file.id: file for file in stored_files(sqlite_node, "cram")}
    formats = {file.role: file.file_format for file in files.values()}
    assert (formats["alignments"], formats["alignments-index"]) == ("CRAM", "CRAI")
    [entry] = sqlite_node.dataset_manifest("cram")["alignments"]
    assert (entry["sample"], entry["format"]) == ("S3", "CRAM")
    # The reference is stored in plain beside the encrypted files, indexed.
    assert entry["reference"] == "references/reference.fa"
    stored_fasta = sqlite_node.datasets_dir / "cram" / entry["reference"]
    assert stored_fasta.read_bytes() == fasta.read_bytes()
    assert stored_fasta.with_name("reference.fa.fai").is_file()
    # The reference is public data, not an input: the fingerprint is unchanged.
    with sqlite_node.session() as session:
        assert session.get(Dataset, "cram").fingerprint == content
    description = read_dataset_description(dataset)
    assert fasta not in [path for _, path in input_files(description)]
    # Sliced through the decrypting reader, the stored CRAI and stored reference.
    reads = plaintext_reader(sqlite_node, "cram", files[entry["file"]])
    index = plaintext_reader(sqlite_node, "cram", files[entry["index"]])
    slicer = StoredCram(
        reads.read,
        reads.plaintext_size,
        index=index.read(0, index.plaintext_size),
        reference=stored_fasta,
    )
    expected_copy = tmp_path / "expected" / "S3.cram"
    expected_copy.parent.mkdir()
    expected_copy.write_bytes(cram.read_bytes())
    pysam.index(str(expected_copy))
    sliced = tmp_path / "slice.cram"
    sliced.write_bytes(b"".join(slicer.slice([ReadRegion("1", 10_000, 60_000)])))
    lines = pysam.samtools.view("-T", str(fasta), str(sliced))
    assert lines
    assert lines == pysam.samtools.view(
        "-T", str(fasta), str(expected_copy), "1:10001-60000"
    )
    assert ingest(sqlite_node, dataset).status == "unchanged"


def test_a_cram_without_its_reference_is_refused(sqlite_node, tmp_path):
    directory = cohort(tmp_path / "inputs")
    fasta = write_reference(tmp_path / "reference.fa", REFERENCES)
    source = write_reads(tmp_path / "S3.bam", num_reads=50, references=REFERENCES)
    pysam.samtools.view(
        "-C",
        "-T",
        str(fasta),
        "-o",
        str(directory / "S3.cram"),
        str(source),
        catch_stdout=False,
    )
    dataset = write_dataset_yaml(
        directory, id="no-reference", alignments=[{"path": "S3.cram", "sample": "S3"}]
    )
    with pytest.raises(
        DatasetDescriptionError, match="needs its reference FASTA"
    ) as raised:
        ingest(sqlite_node, dataset)
    assert raised.value.field == "alignments[0].reference"
    assert sqlite_node.published() == []


def test_a_cram_with_the_wrong_reference_is_refused(sqlite_node, tmp_path):
    directory = cohort(tmp_path / "inputs")
    fasta = write_reference(tmp_path / "reference.fa", REFERENCES)
    write_reference(directory / "other.fa", [("3", 1_000)])
    source = write_reads(tmp_path / "S3.bam", num_reads=50, references=REFERENCES)
    pysam.samtools.view(
        "-C",
        "-T",
        str(fasta),
        "-o",
        str(directory / "S3.cram"),
        str(source),
        catch_stdout=False,
    )
    dataset = write_dataset_yaml(
        directory,
        id="wrong-reference",
        alignments=[{"path": "S3.cram", "sample": "S3", "reference": "other.fa"}],
    )
    with pytest.raises(InputError, match="not in this FASTA") as raised:
        ingest(sqlite_node, dataset)
    assert raised.value.field == "alignments[0].reference"
    assert sqlite_node.published() == []


def two_samples_bam(path):
    header = {
        "SQ": [{"SN": name, "LN": length} for name, length in REFERENCES],
        "RG": [{"ID": "a", "SM": "S1"}, {"ID": "b", "SM": "S2"}],
    }
    with pysam.AlignmentFile(str(path), "wb", header=header):
        pass
    return path


def unsorted_bam(path):
    sorted_bam = bam(path.with_name("sorted.bam"), sample="S1", indexed=False)
    pysam.sort("-n", "-o", str(path), str(sorted_bam))
    return path


@pytest.mark.parametrize(
    ("make", "entry", "error", "field", "message"),
    [
        (
            lambda path: bam(path, sample="S1", indexed=False),
            {"path": "reads.bam", "sample": "S9"},
            DatasetDescriptionError,
            "alignments[0].sample",
            "'S9', which is not a sample of the VCF",
        ),
        (
            lambda path: bam(path, sample="NA12878", indexed=False),
            {"path": "reads.bam"},
            DatasetDescriptionError,
            "alignments[0].sample",
            "say sample 'NA12878', which is not a sample of the VCF",
        ),
        (
            two_samples_bam,
            {"path": "reads.bam"},
            DatasetDescriptionError,
            "alignments[0].sample",
            "name 'S1', 'S2' as sample",
        ),
        (
            unsorted_bam,
            {"path": "reads.bam"},
            InputError,
            "alignments[0].path",
            "sorted by coordinate",
        ),
    ],
)
def test_bad_alignments_name_the_field_and_publish_nothing(
    sqlite_node, tmp_path, make, entry, error, field, message
):
    directory = cohort(tmp_path / "inputs")
    make(directory / "reads.bam")
    dataset = write_dataset_yaml(directory, id="bad-reads", alignments=[entry])
    with pytest.raises(error, match=message) as raised:
        ingest(sqlite_node, dataset)
    assert raised.value.field == field
    assert sqlite_node.published() == []


@pytest.fixture(scope="module")
def cohort_with_reads(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cohort")
    dataset = write_small_cohort(directory, dataset_id="resume-reads")
    write_bam(
        directory / "S001.bam",
        num_reads=300,
        references=[("1", 100_000), ("2", 100_000)],
        unplaced=5,
        sample="S001",
    )
    text = dataset.read_text() + "alignments:\n- path: S001.bam\n"
    dataset.write_text(text)
    return dataset


@pytest.mark.parametrize("checkpoint", ["after:index_alignments", "encrypt:file"])
def test_killed_ingest_with_reads_resumes_identically(
    tmp_path, cohort_with_reads, checkpoint, monkeypatch
):
    monkeypatch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
    reference_dir = tmp_path / "reference"
    with init_node(reference_dir, node_id="r", country="FI") as node:
        ingest(node, cohort_with_reads)
        reference = _snapshot_of(node, "resume-reads")
    assert [f[1] for f in reference["files"]].count("alignments-index") == 1
    node_dir = tmp_path / "node"
    init_node(node_dir, node_id="n", country="FI").close()
    killed = _run_ingest(node_dir, cohort_with_reads, kill_at=checkpoint)
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    with open_node(node_dir) as node:
        assert ingest(node, cohort_with_reads).status == "published"
    _assert_same(_snapshot(node_dir, "resume-reads"), reference)
