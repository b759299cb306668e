"""A node: its directory, configuration, keys, store and metadata database.

Layout of a node directory (``docs/store-format.md`` has the full description)::

    NODE_DIR/
      genomenode.yaml          settings (format_version 1)
      genomenode.db            SQLite metadata database (unless db_url is set)
      keys/node.sec, node.pub  the node's Crypt4GH keypair
      keys/visas/              the node's visa signing keys (ES256)
      keys/audit.key           the audit log's HMAC key (created on first use)
      keys/audit-checkpoints/  the keys that sign audit checkpoints (ES256)
      store/
        store.json             {"format_version": 1, "node_id": ..., ...}
        datasets/<id>/         published datasets (dataset.json, genotypes.vcz, files/)
        staging/<id>/          ingests in progress; never read by users
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

import yaml
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..config import CONFIG_FILENAME, NodeConfig, Secret, load_config, resolve_config
from ..errors import (
    ConfigError,
    FormatVersionError,
    NotFoundError,
    StoreError,
    did_you_mean,
)
from . import crypt
from .db import open_database
from .generation import GENERATION_FILE_OPTION
from .models import (
    AUDIT_FILES_OPTION,
    STATUS_PUBLISHED,
    AuditFiles,
    Dataset,
    published_datasets,
)
from .objects import (
    Storage,
    StoredPath,
    is_remote,
    storage_for,
    write_json_atomic,
)
from .private import private_files

__all__ = [
    "DATASET_FORMAT_VERSION",
    "STORE_FORMAT_VERSION",
    "Node",
    "init_node",
    "open_node",
    "read_versioned_json",
]

STORE_FORMAT_VERSION = 1
DATASET_FORMAT_VERSION = 1


def read_versioned_json(path: pathlib.Path, supported: int) -> dict[str, Any]:
    """Read a genomenode JSON file and check its ``format_version``."""
    try:
        text = path.read_text()
    except OSError as error:
        raise StoreError(f"{path}: cannot read: {error}") from None
    return parse_versioned_json(text, str(path), supported)


def parse_versioned_json(text: str | bytes, where: str, supported: int) -> Any:
    """A genomenode JSON document read from ``where``, its version checked."""
    path = where
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise StoreError(f"{path}: cannot read: {error}") from None
    version = document.get("format_version")
    if version != supported:
        raise FormatVersionError(
            f"{path}: format_version {version!r} is not supported by this genomenode "
            f"(it reads version {supported}); upgrade genomenode or re-ingest"
        )
    return document


@dataclasses.dataclass
class Node:
    """An opened node."""

    config: NodeConfig

    @property
    def storage_dir(self) -> pathlib.Path:
        return self.config.storage_dir

    @property
    def datasets_dir(self) -> pathlib.Path:
        return self.storage_dir / "datasets"

    @property
    def staging_dir(self) -> pathlib.Path:
        return self.storage_dir / "staging"

    @functools.cached_property
    def engine(self) -> Engine:
        engine = open_database(self.config.database_url, self.config.db_schema)
        # The audit log's keys are files beside the node's other keys, never rows
        # of its database; genomenode.access.audit finds them through the engine.
        engine.update_execution_options(
            **{
                AUDIT_FILES_OPTION: self.audit_files,
                GENERATION_FILE_OPTION: self.generation_file,
            }
        )
        return engine

    @property
    def generation_file(self) -> pathlib.Path:
        """The published datasets' generation signal (:mod:`.store.generation`)."""
        return self.config.node_dir / "published.generation"

    @property
    def audit_files(self) -> AuditFiles:
        """Where the audit log's keys live, and how often it is checkpointed."""
        keys = self.config.node_dir / "keys"
        return AuditFiles(
            key_file=keys / "audit.key",
            checkpoint_keys=keys / "audit-checkpoints",
            log_id=self.config.node_id,
            checkpoint_every_entries=self.config.audit_checkpoint_every_entries,
            checkpoint_every_seconds=self.config.audit_checkpoint_every_seconds,
        )

    def close(self) -> None:
        """Release the database connections (the node can be used again after)."""
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @functools.cached_property
    def objects(self) -> Storage:
        """Where the published datasets are: the store directory or an S3 bucket."""
        return storage_for(self.config)

    @property
    def remote(self) -> bool:
        """Whether the published datasets live in an object store."""
        return is_remote(self.config)

    def dataset_prefix(self, dataset_id: str, fingerprint: str) -> str:
        """Key prefix of a dataset's objects in :attr:`objects`.

        In an object store each content of an id has its own prefix (nothing is
        renamed there): an ingest writes under it, verifies, and the committed
        database row with that fingerprint makes it visible.
        """
        if self.remote:
            return f"datasets/{dataset_id}/{fingerprint[:16]}"
        return f"datasets/{dataset_id}"

    def dataset_file(
        self, dataset_id: str, fingerprint: str, stored_path: str
    ) -> pathlib.Path | StoredPath:
        """A stored file of a dataset: a local path, or an object for ranged reads."""
        if self.remote:
            prefix = self.dataset_prefix(dataset_id, fingerprint)
            return self.objects.path(f"{prefix}/{stored_path}")
        return self.datasets_dir / dataset_id / stored_path

    def local_file(
        self,
        dataset_id: str,
        fingerprint: str,
        stored_path: str,
        *,
        companions: tuple[str, ...] = (),
    ) -> pathlib.Path:
        """A stored file of a dataset as a local path, for a library that opens
        files by name only (htslib decoding a CRAM against its reference FASTA).

        On a local store it is the file in the dataset directory. From an object
        store the file is copied once into ``NODE_DIR/cache/`` (under the
        dataset's id and fingerprint, so another content never meets a stale
        copy), with those of its ``companions`` (suffixes: ``.fai``, ``.gzi``)
        that are stored beside it; the companions are copied first and the file
        last, each by an atomic rename, so a copy in place is a whole one.
        Only plain (public) files belong here: nothing is decrypted.

        Raises
        ------
        StoreError
            The file is not in the store.
        """
        if not self.remote:
            return self.datasets_dir / dataset_id / stored_path
        prefix = self.dataset_prefix(dataset_id, fingerprint)
        target = self.cache_dir / prefix / stored_path
        if target.is_file():
            return target
        key = f"{prefix}/{stored_path}"
        if not self.objects.exists(key):
            raise StoreError(f"{self.objects.url}/{key}: the stored file is missing")
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in companions:
            if self.objects.exists(key + suffix):
                _download(
                    self.objects, key + suffix, target.with_name(target.name + suffix)
                )
        _download(self.objects, key, target)
        return target

    @property
    def cache_dir(self) -> pathlib.Path:
        """Local copies of stored files that must be opened by name (see
        :meth:`local_file`); safe to delete at any time."""
        return self.config.node_dir / "cache"

    def delete_dataset_files(self, dataset_id: str) -> None:
        """Delete every stored object of a dataset, and nothing else.

        Every content the id was ever published with goes (in an object store
        each has its own prefix under ``datasets/<id>/``), as do local copies
        in :attr:`cache_dir` and an unfinished ingest's staging directory. On a
        local store the directory is first renamed out of ``datasets/`` (one
        atomic step), then deleted; a call after a killed one finishes the job.
        """
        if self.remote:
            self.objects.delete_prefix(f"datasets/{dataset_id}")
        else:
            directory = self.datasets_dir / dataset_id
            trash = self.staging_dir / f".removing-{dataset_id}"
            if directory.exists():
                if trash.exists():
                    shutil.rmtree(trash)
                os.rename(directory, trash)
            if trash.exists():
                shutil.rmtree(trash)
        shutil.rmtree(self.cache_dir / "datasets" / dataset_id, ignore_errors=True)
        shutil.rmtree(self.staging_dir / dataset_id, ignore_errors=True)

    def has_manifest(self, dataset_id: str, fingerprint: str) -> bool:
        """Whether the dataset's ``dataset.json`` is in place."""
        key = f"{self.dataset_prefix(dataset_id, fingerprint)}/dataset.json"
        return self.objects.exists(key)

    @functools.cached_property
    def node_secret(self) -> bytes:
        """The node's Crypt4GH secret key (what at-rest keys derive from)."""
        return crypt.read_private_key(
            self.config.path("private_key"), self.config.key_passphrase
        )

    def dataset_zarr(
        self, dataset_id: str, fingerprint: str, vcz: str
    ) -> tuple[Any, Callable[[str], bytes | None] | None]:
        """How to read a dataset's VCF Zarr ``vcz`` (its path in the dataset).

        Returns the local directory (plain, local store) or a zarr store (object
        store, or sealed: :mod:`.sealed`), and a function reading one object's
        plaintext by its key in the VCF Zarr (None when absent), or None for a
        plain local directory.
        """
        # zarr loads on first read of a dataset, not with the node (CLI start-up).
        from .sealed import MARKER, SealedStore, Sealer, read_marker

        prefix = f"{self.dataset_prefix(dataset_id, fingerprint)}/{vcz}"
        storage = self.objects
        try:
            salt: bytes | None = read_marker(storage.read(f"{prefix}/{MARKER}"))
        except FileNotFoundError:
            salt = None
        if salt is None and not self.remote:
            return self.datasets_dir / dataset_id / vcz, None
        base = storage.zarr_store(prefix)
        sealer = Sealer(self.node_secret, salt) if salt is not None else None

        def read_object(name: str) -> bytes | None:
            try:
                data = storage.read(f"{prefix}/{name}")
            except FileNotFoundError:
                return None
            return sealer.open(name, data) if sealer is not None else data

        return (SealedStore(base, sealer) if sealer else base), read_object

    @functools.cached_property
    def public_key(self) -> bytes:
        return crypt.read_public_key(self.config.path("public_key"))

    def published(self) -> list[Dataset]:
        """The published datasets, by id."""
        with self.session() as session:
            return list(session.scalars(published_datasets().order_by(Dataset.id)))

    def dataset_summaries(self) -> list[dict[str, Any]]:
        """One plain mapping per published dataset: what ``datasets`` prints."""
        return [
            {
                "id": row.id,
                "name": row.name,
                "country": row.country,
                "security_level": row.security_level,
                "num_individuals": row.num_individuals,
                "num_samples": row.num_samples,
                "num_variants": row.num_variants,
                "published_at": (
                    row.published_at.isoformat() if row.published_at else None
                ),
            }
            for row in self.published()
        ]

    def dataset_manifest(self, dataset_id: str) -> dict[str, Any]:
        """``dataset.json`` of a published dataset.

        A dataset is published when its database row says so *and* its directory is
        in place; an ingest interrupted between the two shows neither.
        """
        with self.session() as session:
            row = session.get(Dataset, dataset_id)
        text: bytes | None = None
        key = ""
        if row is not None and row.status == STATUS_PUBLISHED:
            key = f"{self.dataset_prefix(dataset_id, row.fingerprint)}/dataset.json"
            try:
                text = self.objects.read(key)
            except FileNotFoundError:
                text = None
        if text is None:
            known = [dataset.id for dataset in self.published()]
            raise NotFoundError(
                f"dataset {dataset_id!r} is not published on this node"
                + did_you_mean(dataset_id, known)
            )
        where = f"{self.objects.url}/{key}"
        document: dict[str, Any] = parse_versioned_json(
            text, where, DATASET_FORMAT_VERSION
        )
        return document


def _download(storage: Storage, key: str, target: pathlib.Path) -> None:
    """Copy one object to a local file, atomically (a partial copy has another name)."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        with open(partial, "wb") as out:
            size = storage.size(key)
            for start in range(0, size, _DOWNLOAD_BLOCK):
                out.write(
                    storage.read_range(key, start, min(size, start + _DOWNLOAD_BLOCK))
                )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


# Bytes per ranged GET of a download (a reference genome is gigabytes).
_DOWNLOAD_BLOCK = 16 << 20


def open_node(node_dir: str | os.PathLike[str]) -> Node:
    """Open an initialised node and check its store's format version."""
    config = load_config(node_dir)
    node = Node(config)
    if node.remote:
        try:
            text = node.objects.read("store.json")
        except FileNotFoundError:
            raise StoreError(
                f"{node.objects.url}: not a genomenode store (no store.json); "
                "check the 'storage' setting"
            ) from None
        parse_versioned_json(text, f"{node.objects.url}/store.json", 1)
        return node
    store_json = node.storage_dir / "store.json"
    if not store_json.exists():
        raise StoreError(f"{node.storage_dir}: not a genomenode store (no store.json)")
    read_versioned_json(store_json, STORE_FORMAT_VERSION)
    return node


# Keys, the database and the store: 0600 files, 0700 directories.
@private_files()
def init_node(
    node_dir: str | os.PathLike[str],
    *,
    node_id: str,
    country: str,
    db_url: str | None = None,
    passphrase: Secret | None = None,
    storage: str | None = None,
    storage_endpoint: str | None = None,
) -> Node:
    """Create a node: config, Crypt4GH keypair, empty store and database.

    Raises
    ------
    ConfigError
        If ``node_dir`` already holds a node, or a value is invalid.
    """
    node_dir = pathlib.Path(node_dir).absolute()
    if node_dir.exists() and any(node_dir.iterdir()):
        what = (
            "already a genomenode node"
            if (node_dir / CONFIG_FILENAME).exists()
            else "not empty"
        )
        raise ConfigError(f"{node_dir} is {what}; choose a new or empty directory")
    settings: dict[str, Any] = {"node_id": node_id, "country": country}
    if db_url:
        settings["db_url"] = db_url
    if storage:
        settings["storage"] = storage
    if storage_endpoint:
        settings["storage_endpoint"] = storage_endpoint
    if not node_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"node id {node_id!r}: use letters, digits, '-', '_' or '.'")
    config = resolve_config(node_dir, settings, "genomenode init")
    if is_remote(config):
        # The first request to the object store: wrong credentials, endpoint or
        # bucket fail here, before anything of the node exists.
        try:
            storage_for(config).read("store.json")
        except FileNotFoundError:
            pass
        else:
            raise ConfigError(
                f"{config.values['storage']} already holds a genomenode store; "
                "choose another prefix"
            )
    node_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(node_dir, 0o700)
    keys = node_dir / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    crypt.generate_keypair(keys / "node.sec", keys / "node.pub", passphrase=passphrase)
    node = Node(config)
    for directory in (node.datasets_dir, node.staging_dir):
        directory.mkdir(parents=True, exist_ok=True)
    store_document = {
        "format_version": STORE_FORMAT_VERSION,
        "node_id": node_id,
        "country": country,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if node.remote:
        node.objects.write(
            "store.json", json.dumps(store_document, indent=2).encode() + b"\n"
        )
    write_json_atomic(node.storage_dir / "store.json", store_document)
    node.engine  # noqa: B018 -- creates and migrates the database
    # Written last: a directory is a node once its config exists.
    config_text = "# genomenode node settings; see docs/settings.md\n" + yaml.safe_dump(
        {"format_version": 1, **settings}, sort_keys=False
    )
    partial = node_dir / (CONFIG_FILENAME + ".part")
    partial.write_text(config_text)
    os.replace(partial, node_dir / CONFIG_FILENAME)
    return node
