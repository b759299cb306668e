"""Shared fixtures: nodes on SQLite and PostgreSQL, real and generated inputs."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import os
import pathlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pysam
import pysam.bcftools
import pytest
import sqlalchemy
import yaml

from genomenode.store.node import Node, init_node
from tests.postgres_server import PostgresStartError, throwaway_postgres

DATA = pathlib.Path(__file__).parent / "data"
CINECA_VCF = DATA / "cineca" / "test_1000G.vcf.gz"
CINECA_INDIVIDUALS = DATA / "cineca" / "individuals.json"
PG_URL_VARIABLE = "GENOMENODE_TEST_PG_URL"


@pytest.fixture(autouse=True)
def _in_process_workers(monkeypatch):
    # Worker processes cost a second of start-up per ingest; the tests that exercise
    # them set GENOMENODE_WORKER_PROCESSES themselves.
    monkeypatch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
    for name in ("GENOMENODE_DB_URL", "GENOMENODE_DB_SCHEMA", "GENOMENODE_NODE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _researcher_config(monkeypatch, tmp_path_factory):
    # The sign-ins of whoever runs the tests never reach them (login, fetch).
    monkeypatch.setenv("GENOMENODE_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    for name in ("GENOMENODE_BROKER", "GENOMENODE_NODE_URL", "GENOMENODE_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that run on PostgreSQL: ``pytest -m postgres`` selects them."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if any(isinstance(value, str) and value == "postgresql" for value in params):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The PostgreSQL server of the session: GENOMENODE_TEST_PG_URL, or else a
    throwaway one (tests/postgres_server.py). Never a skip: a server that cannot
    start fails the tests that need it."""
    url = os.environ.get(PG_URL_VARIABLE)
    if url:
        yield url
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgres())
        except PostgresStartError as error:
            pytest.fail(
                f"{error}\n(or set {PG_URL_VARIABLE} to a server of your own)",
                pytrace=False,
            )
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, monkeypatch):
    """A database URL (None: the node's SQLite file); PostgreSQL in a fresh schema."""
    if request.param == "sqlite":
        yield None
        return
    url = request.getfixturevalue("postgres_url")
    schema = fresh_schema_name()
    monkeypatch.setenv("GENOMENODE_DB_SCHEMA", schema)
    yield url
    drop_schema(url, schema)


def fresh_schema_name() -> str:
    return f"gn_test_{uuid.uuid4().hex[:12]}"


def drop_schema(url: str, schema: str) -> None:
    """Remove a test's PostgreSQL schema and everything in it."""
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


@pytest.fixture
def node(tmp_path, database) -> Node:
    """A fresh node, on SQLite and on PostgreSQL."""
    with init_node(
        tmp_path / "node", node_id="test-node", country="FI", db_url=database
    ) as fresh:
        yield fresh


@pytest.fixture
def sqlite_node(tmp_path) -> Node:
    """A fresh node on SQLite only, for tests not about the database."""
    with init_node(tmp_path / "node", node_id="test-node", country="FI") as fresh:
        yield fresh


def write_dataset_yaml(directory: pathlib.Path, **fields) -> pathlib.Path:
    """Write a valid dataset.yaml; ``fields`` override keys, or remove them (None)."""
    document = {
        "format_version": 1,
        "id": "test-dataset",
        "name": "Test dataset",
        "description": "A dataset for tests",
        "country": "FI",
        "contact": {"name": "Test", "email": "test@example.org"},
        "security_level": "CONTROLLED",
        "assembly": "GRCh37",
        "data_use": [{"id": "DUO:0000042"}],
        "genotypes": [{"path": "cohort.vcf.gz"}],
        "clinical": {"format": "beacon-individuals", "path": "individuals.json"},
    }
    for key, value in fields.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    path = directory / "dataset.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def cineca_dataset(tmp_path) -> pathlib.Path:
    """dataset.yaml over the real 1000 Genomes slice and CINECA individuals."""
    directory = tmp_path / "cineca"
    directory.mkdir()
    shutil.copy(CINECA_VCF, directory / "cohort.vcf.gz")
    shutil.copy(CINECA_INDIVIDUALS, directory / "individuals.json")
    return write_dataset_yaml(directory, id="cineca-1kg")


def write_vcf(
    path: pathlib.Path,
    records: list[str],
    *,
    samples: list[str] | None = None,
    contigs: tuple[str, ...] = ("1", "2"),
    extra_header: tuple[str, ...] = (),
    index: bool = True,
) -> pathlib.Path:
    """Write a bgzipped VCF (``path`` ends with .vcf.gz) from tab-separated records."""
    samples = samples if samples is not None else ["S1", "S2", "S3"]
    lines = ["##fileformat=VCFv4.3"]
    lines += [f"##contig=<ID={contig},length=100000000>" for contig in contigs]
    lines += [
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        *extra_header,
        "\t".join(
            [
                "#CHROM",
                "POS",
                "ID",
                "REF",
                "ALT",
                "QUAL",
                "FILTER",
                "INFO",
                "FORMAT",
                *samples,
            ]
        ),
        *records,
    ]
    plain = path.with_suffix("")
    plain.write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    if index:
        pysam.tabix_index(str(path), preset="vcf", force=True, csi=True)
    return path


def genotype_tally(vcf: pathlib.Path) -> list[dict]:
    """Per-record counts computed naively from the GT strings bcftools prints.

    bcftools (bundled in pysam) decodes the genotypes; the tally is plain Python.
    """
    out = pysam.bcftools.query("-f", "%CHROM\t%POS\t%REF\t%ALT[\t%GT]\n", str(vcf))
    rows = []
    for line in out.splitlines():
        contig, position, reference, alternates, *calls = line.split("\t")
        alleles = [reference, *([] if alternates == "." else alternates.split(","))]
        allele_count = collections.Counter()
        hom = collections.Counter()
        het = collections.Counter()
        hemi = collections.Counter()
        called = 0
        for call in calls:
            parts = call.replace("|", "/").split("/")
            present = [int(part) for part in parts if part != "."]
            for allele in present:
                allele_count[allele] += 1
            # As bcftools +fill-tags: one called allele (1, or 1/.) is haploid.
            if len(present) == 1:
                hemi[present[0]] += 1
            elif len(present) == 2 and present[0] == present[1]:
                hom[present[0]] += 2
            elif len(present) == 2:
                het[present[0]] += 1
                het[present[1]] += 1
            called += bool(present)
        rows.append(
            {
                "contig": contig,
                "position": int(position),
                "alleles": alleles,
                "allele_count": [allele_count[index] for index in range(len(alleles))],
                "allele_total": sum(allele_count.values()),
                "allele_count_hom": [hom[index] for index in range(len(alleles))],
                "allele_count_het": [het[index] for index in range(len(alleles))],
                "allele_count_hemi": [hemi[index] for index in range(len(alleles))],
                "num_called": called,
            }
        )
    return rows


#: The tags of ``bcftools +fill-tags`` that genomenode's statistics reproduce.
FILL_TAGS = ("AC", "AN", "NS", "AC_Hom", "AC_Het", "AC_Hemi")


def fill_tags(vcf: pathlib.Path, samples: list[str] | None = None) -> list[dict]:
    """Per record: ``bcftools +fill-tags`` counts, ALT alleles as lists.

    The Debian bcftools (``.ci/run`` installs it): pysam's bundled bcftools has no
    plugins. ``samples`` restricts the counts to those samples (``-s``).
    """
    bcftools = shutil.which("bcftools")
    assert bcftools, (
        "bcftools (Debian) is needed for +fill-tags: apt-get install bcftools"
    )
    subset = ["-s", ",".join(samples)] if samples is not None else []
    tagged = subprocess.run(
        [bcftools, "view", *subset, "-Ou", str(vcf)], check=True, capture_output=True
    ).stdout
    tagged = subprocess.run(
        [bcftools, "+fill-tags", "-Ou", "-", "--", "-t", ",".join(FILL_TAGS)],
        input=tagged,
        check=True,
        capture_output=True,
    ).stdout
    query = "\t".join(f"%INFO/{tag}" for tag in FILL_TAGS) + "\n"
    out = subprocess.run(
        [bcftools, "query", "-f", query, "-"],
        input=tagged,
        check=True,
        capture_output=True,
    ).stdout.decode()
    rows = []
    for line in out.splitlines():
        values = dict(zip(FILL_TAGS, line.split("\t"), strict=True))
        rows.append(
            {
                tag: (
                    int(value)
                    if tag in ("AN", "NS")
                    else [int(part) for part in value.split(",") if part != "."]
                )
                for tag, value in values.items()
            }
        )
    return rows


def gt_record(
    contig: str, position: int, reference: str, alternate: str, calls: list[str]
) -> str:
    """One VCF record line: a biallelic PASS site with genotype ``calls`` only."""
    site = [contig, str(position), ".", reference, alternate, ".", "PASS", ".", "GT"]
    return "\t".join([*site, *calls])


def sex_of(index: int) -> dict[str, str]:
    """The Beacon ``sex`` of the ``index``-th sample of a test cohort: odd ones male."""
    if index % 2:
        return {"id": "NCIT:C20197", "label": "male"}
    return {"id": "NCIT:C16576", "label": "female"}


def write_small_cohort(
    directory: pathlib.Path,
    *,
    dataset_id: str = "small",
    num_samples: int = 40,
    num_variants: int = 400,
    seed: int = 1,
) -> pathlib.Path:
    """A small random cohort over two contigs with Beacon individuals; its dataset.yaml.

    For tests of the pipeline's mechanics (resume, atomicity); population-genetic
    realism comes from ``genomenode simulate`` and the real 1000 Genomes files.
    """
    import json

    import numpy as np

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    samples = [f"S{index:03d}" for index in range(num_samples)]
    records = []
    for index in range(num_variants):
        contig = "1" if index < num_variants // 2 else "2"
        position = 1000 + 37 * index
        frequency = rng.uniform(0.01, 0.6)
        alleles = rng.random((num_samples, 2)) < frequency
        calls = [f"{int(a)}|{int(b)}" for a, b in alleles]
        if index % 17 == 0:
            calls[index % num_samples] = "./."
        reference, alternate = rng.choice(list("ACGT"), size=2, replace=False)
        records.append(gt_record(contig, position, reference, alternate, calls))
    write_vcf(directory / "cohort.vcf.gz", records, samples=samples)
    individuals = [
        {
            "id": sample,
            "sex": sex_of(index),
            "diseases": [
                {
                    "diseaseCode": {
                        "id": "ICD10:I25.1",
                        "label": "Atherosclerotic heart disease",
                    }
                }
            ]
            if index % 5 == 0
            else [],
        }
        for index, sample in enumerate(samples)
    ]
    (directory / "individuals.json").write_text(json.dumps(individuals))
    return write_dataset_yaml(directory, id=dataset_id)


@contextlib.contextmanager
def in_process_workers():
    """Ingest without worker processes inside the block (module-scoped fixtures,
    which cannot use the per-test monkeypatch)."""
    previous = os.environ.get("GENOMENODE_WORKER_PROCESSES")
    os.environ["GENOMENODE_WORKER_PROCESSES"] = "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["GENOMENODE_WORKER_PROCESSES"]
        else:
            os.environ["GENOMENODE_WORKER_PROCESSES"] = previous


def grant_access(
    node: Node,
    dataset_id: str,
    subject: str,
    *,
    actor: str = "operator:test",
    ends_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> int:
    """``subject`` applies for ``dataset_id`` (GRU) and an operator approves it
    (overriding a deny recommendation, as a committee may); returns the
    application id. ``now`` backdates both steps."""
    from genomenode.access import duo as access_duo
    from genomenode.access import workflow

    moment = now or dt.datetime.now(dt.UTC)
    application = workflow.create_application(
        node.engine,
        dataset_id=dataset_id,
        applicant=subject,
        project_title=f"Access for {subject}",
        purpose=access_duo.purpose_from_json({"term": "DUO:0000042"}),
        submit=True,
        now=now,
    )
    workflow.approve(
        node.engine,
        application.id,
        actor=actor,
        ends_at=ends_at or moment + dt.timedelta(days=1),
        as_operator=actor.startswith("operator:"),
        override_reason=(
            "granted for the test"
            if application.recommendation.outcome == "deny"
            else None
        ),
        now=now,
    )
    return application.id


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serving_in_thread(app, port: int | None = None) -> Iterator[str]:
    """``app`` served by uvicorn on ``port`` (else a free one) of loopback, in
    a thread; yields its base URL."""
    import threading

    import uvicorn

    port = free_port() if port is None else port
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "no server"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_until_up(
    process: subprocess.Popen, url: str, *, deadline: float | None = None
) -> None:
    """Wait until ``url`` answers (any status); fail with the server's stderr if
    ``process`` exits, or when ``deadline`` (monotonic; default 60 s) passes."""
    import httpx2

    deadline = deadline if deadline is not None else time.monotonic() + 60
    while True:
        try:
            httpx2.get(url, timeout=2.0)
            return
        except httpx2.TransportError:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise AssertionError(f"{url}: the server exited\n{error}") from None
            assert time.monotonic() < deadline, f"{url} did not start"
            time.sleep(0.2)


@pytest.fixture
def permissive_umask():
    """The common umask 022 during the test, so that a file genomenode fails to
    make private would show as group- and world-readable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def assert_private(root: pathlib.Path) -> list[pathlib.Path]:
    """Every directory under ``root`` (and ``root``) is 0700 and every file 0600
    (or stricter); returns the files, for the caller to check what was walked."""
    import stat

    opened = []
    for path in [root, *sorted(root.rglob("*"))]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        if path.is_dir():
            assert mode == 0o700, f"{path}: directory mode {mode:o}, not 700"
        else:
            assert mode & 0o077 == 0, f"{path}: mode {mode:o}, not 600"
            opened.append(path)
    return opened
