"""Gene tables: read strictly, looked up by id or symbol, carried through ingest."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import pytest
import yaml

from genomenode.beacon.requests import parse_get
from genomenode.beacon.variants import (
    gene_queries,
    matching_variants,
    naive_matching_variants,
)
from genomenode.dataset import read_dataset_description
from genomenode.errors import ConfigError, IngestError, InputError, NotFoundError
from genomenode.ingest import ingest
from genomenode.ingest import run as ingest_run
from genomenode.simulate import simulate_cohort
from genomenode.store import genes as genes_module
from genomenode.store.genes import Gene, GeneTable, gene_table_for
from genomenode.store.genotypes import GenotypeStore
from genomenode.store.node import init_node, open_node

from ..conftest import write_small_cohort

HEADER = "gene_id\tsymbol\tcontig\tstart\tend\n"
# write_small_cohort puts variant i at POS 1000 + 37 i: 200 on contig 1, 200 on 2.
GENES = (
    "# synthetic genes over the small cohort\n"
    + HEADER
    + "G0001\tALPHA\t1\t1500\t3000\n"
    + "G0002\tBETA\tchr2\t8500\t9000\n"
    + "G0003\tGAMMA\t1\t0\t999\n"  # before the first variant
    + "G0004X\tPARGENE\tX\t100\t200\n"
    + "G0004Y\tPARGENE\tY\t100\t200\n"
)


def _table(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "genes.tsv"
    path.write_text(text)
    return path


def _cohort_with_genes(directory: pathlib.Path, dataset_id: str) -> pathlib.Path:
    dataset_yaml = write_small_cohort(directory, dataset_id=dataset_id)
    (directory / "genes.tsv").write_text(GENES)
    document = yaml.safe_load(dataset_yaml.read_text())
    document["genes"] = "genes.tsv"
    dataset_yaml.write_text(yaml.safe_dump(document, sort_keys=False))
    return dataset_yaml


# ------------------------------------------------------------------- the table


def test_read_and_lookup(tmp_path):
    table = GeneTable.read(_table(tmp_path, GENES))

    assert len(table) == 5
    assert table.lookup("ALPHA") == (Gene("G0001", "ALPHA", "1", 1500, 3000),)
    assert table.lookup("alpha") == table.lookup("G0001") == table.lookup("g0001")
    assert table.lookup("BETA")[0].contig == "2"  # chr stripped
    assert {gene.contig for gene in table.lookup("pargene")} == {"X", "Y"}
    assert table.lookup("BRCA1") == ()


def test_an_id_wins_over_another_genes_symbol(tmp_path):
    table = GeneTable.read(
        _table(tmp_path, HEADER + "ABC\tXYZ\t1\t0\t10\nQ1\tABC\t2\t0\t10\n")
    )
    assert [gene.gene_id for gene in table.lookup("abc")] == ["ABC"]


def test_header_only_is_an_empty_table(tmp_path):
    assert len(GeneTable.read(_table(tmp_path, "# nothing yet\n" + HEADER))) == 0


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("", None, None, "empty gene table"),
        ("G1\tA\t1\t0\t10\n", 1, None, "expected the header line"),
        ("# c\n" + HEADER + "G1\tA\t1\t0\n", 3, None, "expected 5"),
        (HEADER + "G1\tA\t1\t0\t10\textra\n", 2, None, "got 6"),
        (HEADER + "G1\tA\t1\t-5\t10\n", 2, "start", "non-negative integer"),
        (HEADER + "G1\tA\t1\t0\tten\n", 2, "end", "non-negative integer"),
        (HEADER + "G1\tA\t1\t10\t10\n", 2, "end", "greater than start"),
        (HEADER + "G1\t\t1\t0\t10\n", 2, "symbol", "is empty"),
        (HEADER + "G1\tA\t1\t0\t10\n\nG1\tB\t1\t5\t9\n", 4, "gene_id", "line 2"),
        ("gene_id symbol contig start end\n", 1, None, "tab-separated"),
    ],
)
def test_bad_rows_name_file_line_and_column(tmp_path, text, line, field, message):
    path = _table(tmp_path, text)
    with pytest.raises(InputError) as caught:
        GeneTable.read(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (str(path), line, field)
    assert message in str(error) and str(path) in str(error)


def test_gene_queries_keep_the_other_parameters(tmp_path):
    table = GeneTable.read(_table(tmp_path, GENES))
    query = parse_get({"geneId": "Beta", "variantType": "SNP"}).variant
    (ranged,) = gene_queries(query, table)
    assert (ranged.kind, ranged.reference_name, ranged.start, ranged.end) == (
        "range",
        "2",
        (8500,),
        (9000,),
    )
    assert ranged.variant_type == "SNP"
    unknown = parse_get({"geneId": "NOPE"}).variant
    assert gene_queries(unknown, table) == []


# ------------------------------------------------------------- through ingest


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A node with the small cohort published with its genes, and one without."""
    directory = tmp_path_factory.mktemp("genes")
    with_genes = _cohort_with_genes(directory / "with", "with-genes")
    without = write_small_cohort(directory / "without", dataset_id="no-genes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
        with init_node(directory / "node", node_id="n", country="FI") as node:
            ingest(node, with_genes)
            ingest(node, without)
            yield node, directory


def _store(node, dataset_id):
    manifest = node.dataset_manifest(dataset_id)
    return GenotypeStore(
        node.datasets_dir / dataset_id / "genotypes.vcz",
        manifest["genotypes"]["contigs"],
    )


def test_published_dataset_carries_its_gene_table(published):
    node, directory = published
    manifest = node.dataset_manifest("with-genes")
    published_table = node.datasets_dir / "with-genes" / "genes.tsv"
    assert published_table.read_text() == (directory / "with" / "genes.tsv").read_text()
    assert manifest["genes"]["path"] == "genes.tsv"
    assert manifest["genes"]["num_genes"] == 5
    stored = [file for file in manifest["files"] if file["role"] == "genes"]
    assert stored[0]["sha256_plain"] == manifest["genes"]["sha256"]
    assert node.dataset_manifest("no-genes")["genes"] is None
    assert not (node.datasets_dir / "no-genes" / "genes.tsv").exists()


@pytest.mark.parametrize(
    "extra",
    [{}, {"variantType": "SNP"}, {"alternateBases": "A"}, {"variantMinLength": "2"}],
)
def test_gene_query_equals_the_range_query_and_the_scan(published, extra):
    node, _ = published
    store = _store(node, "with-genes")
    table = gene_table_for(node, "with-genes")
    assert table is not None
    for name, contig, start, end in (
        ("alpha", "1", 1500, 3000),
        ("G0002", "2", 8500, 9000),
    ):
        gene = parse_get({"geneId": name, **extra}).variant
        ranged = parse_get(
            {"referenceName": contig, "start": str(start), "end": str(end), **extra}
        ).variant
        found = matching_variants(store, gene, genes=table)
        assert found == matching_variants(store, ranged)
        assert found == naive_matching_variants(store, gene, genes=table)
        if not extra:
            # Variant i starts at 0-based 999 + 37 i; all are SNVs (1 base).
            expected = {
                i
                for i in range(400)
                if start <= 1000 + 37 * i - 1 < end and (i < 200) == (contig == "1")
            }
            assert {row for row, _ in found} == expected
            assert expected


def test_unknown_gene_and_gene_without_variants_match_nothing(published):
    node, _ = published
    store = _store(node, "with-genes")
    table = gene_table_for(node, "with-genes")
    for name in ("BRCA1", "GAMMA", "PARGENE"):
        query = parse_get({"geneId": name}).variant
        assert matching_variants(store, query, genes=table) == []


def test_dataset_without_a_table_warns_once(published, caplog):
    node, _ = published
    genes_module._WARNED.clear()
    with caplog.at_level("WARNING", logger="genomenode.store.genes"):
        assert gene_table_for(node, "no-genes") is None
        assert gene_table_for(node, "no-genes") is None
    warnings = [r for r in caplog.records if "no-genes" in r.getMessage()]
    assert len(warnings) == 1
    assert "gene_table" in warnings[0].getMessage()


def test_node_setting_serves_datasets_without_their_own(published, monkeypatch):
    node, directory = published
    node_table = directory / "node-genes.tsv"
    node_table.write_text(HEADER + "N1\tNODEGENE\t1\t1000\t1100\n")
    config = node.config
    monkeypatch.setattr(
        node, "config", type(config)(config.node_dir, {**config.values})
    )
    node.config.values["gene_table"] = str(node_table)  # type: ignore[index]
    table = gene_table_for(node, "no-genes")
    assert table is not None and table.lookup("nodegene")
    # A dataset's own table comes first.
    own = gene_table_for(node, "with-genes")
    assert own is not None and own.lookup("ALPHA") and not own.lookup("NODEGENE")
    node.config.values["gene_table"] = str(directory / "missing.tsv")  # type: ignore[index]
    with pytest.raises(ConfigError, match="gene_table"):
        gene_table_for(node, "no-genes")


def test_unpublished_dataset(published):
    node, _ = published
    with pytest.raises(NotFoundError):
        gene_table_for(node, "nothing-here")


def test_bad_gene_table_fails_the_ingest_before_anything_is_published(
    sqlite_node, tmp_path
):
    dataset_yaml = _cohort_with_genes(tmp_path / "bad", "bad-genes")
    (tmp_path / "bad" / "genes.tsv").write_text(HEADER + "G1\tA\t1\t9\t3\n")
    with pytest.raises(InputError) as caught:
        ingest(sqlite_node, dataset_yaml)
    assert caught.value.line == 2 and caught.value.field == "end"
    assert sqlite_node.published() == []


def test_gene_table_changed_during_the_ingest_is_refused(
    sqlite_node, tmp_path, monkeypatch
):
    dataset_yaml = _cohort_with_genes(tmp_path / "changing", "changing")
    original = ingest_run.checkpoint

    def edit_after_encrypt(name: str) -> None:
        if name == "after:encrypt":
            with open(tmp_path / "changing" / "genes.tsv", "a") as handle:
                handle.write("G9\tLATE\t1\t0\t10\n")
        original(name)

    # "after:encrypt" is reported when the run records the step.
    monkeypatch.setattr(ingest_run, "checkpoint", edit_after_encrypt)
    with pytest.raises(IngestError, match="changed during the ingest"):
        ingest(sqlite_node, dataset_yaml)
    assert sqlite_node.published() == []


@pytest.mark.parametrize(
    "kill_at", ["after:encrypt", "after:metadata", "publish:moved"]
)
def test_killed_ingest_resumes_with_its_gene_table(tmp_path, kill_at):
    dataset_yaml = _cohort_with_genes(tmp_path / "cohort", "killed")
    node_dir = tmp_path / "node"
    init_node(node_dir, node_id="n", country="FI").close()
    environment = dict(
        os.environ, GENOMENODE_WORKER_PROCESSES="0", GENOMENODE_TEST_KILL_AT=kill_at
    )
    killed = subprocess.run(
        [sys.executable, "-m", "genomenode", "ingest", "--node", str(node_dir),
         str(dataset_yaml)],
        env=environment, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    with open_node(node_dir) as node:
        assert ingest(node, dataset_yaml).status == "published"
        manifest = node.dataset_manifest("killed")
        published_table = node.datasets_dir / "killed" / manifest["genes"]["path"]
        assert published_table.read_text() == GENES
        assert gene_table_for(node, "killed") is not None
        assert not list((node.datasets_dir / "killed").glob("*.part"))


def test_simulated_cohort_references_a_valid_gene_table(tmp_path):
    result = simulate_cohort(tmp_path / "sim", samples=50, length=400_000, seed=3)
    description = read_dataset_description(result.dataset_yaml)
    assert description.genes == result.genes_path.resolve()
    table = GeneTable.read(description.genes)
    # The simulator puts a gene around every causal variant.
    for contig, position, _, _ in result.causal_variants:
        assert any(
            gene.contig == contig and gene.start <= position - 1 < gene.end
            for gene in table
        )
    assert table.lookup(table.genes[0].symbol.lower()) == (table.genes[0],)
