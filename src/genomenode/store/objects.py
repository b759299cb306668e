"""Where a node keeps its published datasets: a local directory or an S3 bucket.

The ``storage`` setting is a directory (the embedded default, ``NODE_DIR/store``)
or ``s3://bucket/prefix`` on any S3-compatible service (Ceph, MinIO, a cloud).
Both are seen through :class:`Storage`: whole-object and ranged reads, writes,
listings and a zarr 3 store (``zarr.storage.LocalStore`` or ``ObjectStore`` over
obstore's ``S3Store``), so the genotype queries, htsget slices and DRS downloads
read byte ranges of objects in place, never whole files.

Credentials of an S3 store come from the standard AWS environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), the
endpoint and region from the ``storage_endpoint`` / ``storage_region`` settings
or ``AWS_ENDPOINT_URL`` / ``AWS_REGION``. They are handed to obstore and never
printed: errors name the setting to check, not its value.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import pathlib
import re
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from ..config import NodeConfig
from ..errors import ConfigError, StoreError

__all__ = [
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StoredPath",
    "is_remote",
    "iter_files",
    "open_binary",
    "storage_for",
    "stored_size",
    "upload_tree",
    "write_json_atomic",
    "write_text_atomic",
]

# Bytes fetched per ranged GET when a stored file is read sequentially.
_READ_AHEAD = 1 << 20


class Storage:
    """Objects under keys (``/``-separated, relative to the store's root)."""

    url: str

    def read(self, key: str) -> bytes:
        """The whole object; ``FileNotFoundError`` when there is none."""
        raise NotImplementedError

    def read_range(self, key: str, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of the object."""
        raise NotImplementedError

    def size(self, key: str) -> int:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except FileNotFoundError:
            return False
        return True

    def write(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def upload(self, key: str, path: pathlib.Path) -> None:
        """Store the local file ``path`` as ``key``."""
        self.write(key, path.read_bytes())

    def listing(self, prefix: str) -> dict[str, int]:
        """Every object under ``prefix`` (a directory-like key) with its size."""
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Delete one object (none there: nothing to do)."""
        raise NotImplementedError

    def zarr_store(self, prefix: str, *, read_only: bool = True) -> Any:
        """A zarr 3 store rooted at ``prefix``."""
        raise NotImplementedError

    def path(self, key: str) -> StoredPath:
        return StoredPath(self, key)


class LocalStorage(Storage):
    """A directory: keys are relative paths."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.url = str(root)

    def _file(self, key: str) -> pathlib.Path:
        return self.root / key

    def read(self, key: str) -> bytes:
        return self._file(key).read_bytes()

    def read_range(self, key: str, start: int, stop: int) -> bytes:
        with open(self._file(key), "rb") as stream:
            stream.seek(start)
            return stream.read(stop - start)

    def size(self, key: str) -> int:
        return self._file(key).stat().st_size

    def write(self, key: str, data: bytes) -> None:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        os.replace(partial, target)

    def upload(self, key: str, path: pathlib.Path) -> None:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def listing(self, prefix: str) -> dict[str, int]:
        base = self._file(prefix)
        if not base.exists():
            return {}
        return {
            str(path.relative_to(self.root)): path.stat().st_size
            for path in base.rglob("*")
            if path.is_file()
        }

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._file(prefix), ignore_errors=True)

    def delete(self, key: str) -> None:
        self._file(key).unlink(missing_ok=True)

    def zarr_store(self, prefix: str, *, read_only: bool = True) -> Any:
        from zarr.storage import LocalStore

        return LocalStore(self._file(prefix), read_only=read_only)


#: What a write killed midway leaves in a directory: zarr's ``LocalStore`` writes
#: ``<name>.<uuid hex>.partial`` and renames it over ``<name>``; ``LocalStorage.write``
#: and the pipeline write ``<name>.part`` the same way.
_INTERRUPTED_WRITE = re.compile(r"(\.[0-9a-f]{32}\.partial|\.part)\Z")


def write_json_atomic(path: pathlib.Path, document: Any) -> None:
    """Write JSON so that readers see the old or the new file, never a partial one."""
    write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def write_text_atomic(path: pathlib.Path, text: str) -> None:
    """Write ``text`` so that readers (and a run resumed after a SIGKILL) see the
    old or the new file, never a partial one."""
    partial = path.with_name(path.name + ".part")
    with open(partial, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def remove_interrupted_writes(directory: pathlib.Path) -> list[pathlib.Path]:
    """Delete the temporary files of writes a killed process never renamed.

    Only for a directory no other process writes to (the caller holds its lock):
    a resumed step writes its files again, but a stray temporary file would
    otherwise be listed, sealed or uploaded with the rest. Returns what it removed.
    """
    removed = []
    for path in directory.rglob("*"):
        if _INTERRUPTED_WRITE.search(path.name) and path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def _s3_error(url: str, error: Exception) -> Exception:
    """An obstore error as a :class:`StoreError` naming what to check."""
    import obstore.exceptions as failures

    if isinstance(error, (FileNotFoundError, failures.NotFoundError)):
        return FileNotFoundError(f"{url}: no such object")
    text = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
    if isinstance(
        error, (failures.PermissionDeniedError, failures.UnauthenticatedError)
    ) or any(
        marker in str(error)
        for marker in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied")
    ):
        return StoreError(
            f"{url}: the object store refused the credentials ({text}); check "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) "
            "in the environment, and the 'storage' setting's bucket"
        )
    return StoreError(
        f"{url}: object store error ({text}); check the 'storage', "
        "'storage_endpoint' and 'storage_region' settings"
    )


class S3Storage(Storage):
    """An S3 bucket (or a prefix of one) through obstore.

    Parameters
    ----------
    url
        ``s3://bucket`` or ``s3://bucket/prefix``.
    endpoint, region
        The service's endpoint (``https://s3.example.org``; ``http://`` is
        allowed for a loopback test server) and region; None: AWS_* environment.
    """

    def __init__(
        self, url: str, *, endpoint: str | None = None, region: str | None = None
    ) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigError(f"setting 'storage': {url!r} is not s3://bucket/prefix")
        self.url = url.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL")
        options: Any = {}
        if endpoint:
            options["endpoint"] = endpoint
        region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
        )
        options["region"] = region or "us-east-1"
        self._options = options
        self._client_options: Any = {
            "allow_http": bool(endpoint and endpoint.startswith("http:"))
        }
        self.store = self._s3_store(self.prefix)

    def _s3_store(self, prefix: str) -> Any:
        from obstore.store import S3Store

        try:
            return S3Store(
                self.bucket,
                prefix=prefix or None,
                client_options=self._client_options,
                **self._options,
            )
        except Exception as error:  # obstore raises its own configuration errors
            raise _s3_error(self.url, error) from None

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r})"

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(self.store, *args, **kwargs)
        except Exception as error:
            raise _s3_error(f"{self.url}/{args[0] if args else ''}", error) from None

    def read(self, key: str) -> bytes:
        import obstore

        result = self._call(obstore.get, key)
        return bytes(result.bytes())

    def read_range(self, key: str, start: int, stop: int) -> bytes:
        import obstore

        if stop <= start:
            return b""
        return bytes(self._call(obstore.get_range, key, start=start, end=stop))

    def size(self, key: str) -> int:
        import obstore

        return int(self._call(obstore.head, key)["size"])

    def write(self, key: str, data: bytes) -> None:
        import obstore

        self._call(obstore.put, key, data)

    def upload(self, key: str, path: pathlib.Path) -> None:
        import obstore

        # obstore streams a path in multipart uploads (no whole file in memory).
        self._call(obstore.put, key, path)

    def listing(self, prefix: str) -> dict[str, int]:
        import obstore

        found: dict[str, int] = {}
        base = prefix.rstrip("/") + "/"
        try:
            for batch in obstore.list(self.store, prefix=base):
                for item in batch:
                    found[item["path"]] = int(item["size"])
        except Exception as error:
            raise _s3_error(f"{self.url}/{base}", error) from None
        return found

    def delete_prefix(self, prefix: str) -> None:
        import obstore

        keys = list(self.listing(prefix))
        for first in range(0, len(keys), 1000):
            self._call(obstore.delete, keys[first : first + 1000])

    def delete(self, key: str) -> None:
        import obstore

        self._call(obstore.delete, key)

    def zarr_store(self, prefix: str, *, read_only: bool = True) -> Any:
        from zarr.storage import ObjectStore

        full = "/".join(part for part in (self.prefix, prefix.strip("/")) if part)
        return ObjectStore(self._s3_store(full), read_only=read_only)


class StoredPath:
    """A stored file by its storage and key: what transfer code opens for ranges."""

    def __init__(self, storage: Storage, key: str) -> None:
        self.storage = storage
        self.key = key

    def __repr__(self) -> str:
        return f"StoredPath({self.storage.url!r}, {self.key!r})"

    def __str__(self) -> str:
        return f"{self.storage.url}/{self.key}"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, StoredPath)
            and other.storage.url == self.storage.url
            and other.key == self.key
        )

    def __hash__(self) -> int:
        return hash((self.storage.url, self.key))


class _RangeReader(io.RawIOBase):
    """A seekable, read-only file over ranged GETs of one object.

    Reads fetch at least ``_READ_AHEAD`` bytes and keep the last block, so a
    sequential read (a Crypt4GH header, then segments) costs one request per
    megabyte, and a seek elsewhere costs exactly the bytes it reads.
    """

    def __init__(self, location: StoredPath) -> None:
        self._location = location
        self._size = location.storage.size(location.key)
        self._position = 0
        self._block_start = 0
        self._block = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}
        self._position = max(0, base[whence] + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._position)
        if wanted <= 0:
            return 0
        offset = self._position - self._block_start
        if offset < 0 or offset + wanted > len(self._block):
            stop = min(self._size, self._position + max(wanted, _READ_AHEAD))
            self._block = self._location.storage.read_range(
                self._location.key, self._position, stop
            )
            self._block_start, offset = self._position, 0
        view[:wanted] = self._block[offset : offset + wanted]
        self._position += wanted
        return wanted

    @property
    def size(self) -> int:
        return self._size


def open_binary(location: pathlib.Path | StoredPath) -> Any:
    """A seekable binary file of a local path or a stored object (unbuffered)."""
    if isinstance(location, StoredPath):
        if isinstance(location.storage, LocalStorage):
            return io.FileIO(location.storage.root / location.key, "r")
        return _RangeReader(location)
    return io.FileIO(location, "r")


def stored_size(location: pathlib.Path | StoredPath) -> int:
    """Bytes of a local file or stored object."""
    if isinstance(location, StoredPath):
        return location.storage.size(location.key)
    return pathlib.Path(location).stat().st_size


def storage_for(config: NodeConfig) -> Storage:
    """The node's storage, as its ``storage`` setting says."""
    storage = config.values.get("storage")
    if storage and str(storage).startswith("s3://"):
        return S3Storage(
            str(storage),
            endpoint=config.values.get("storage_endpoint"),
            region=config.values.get("storage_region"),
        )
    return LocalStorage(config.storage_dir)


def is_remote(config: NodeConfig) -> bool:
    """Whether the node's datasets live in an object store."""
    return str(config.values.get("storage") or "").startswith("s3://")


def iter_files(root: pathlib.Path) -> Iterator[pathlib.Path]:
    """Every file under ``root``, sorted (what an upload copies)."""
    return iter(sorted(path for path in root.rglob("*") if path.is_file()))


# Concurrent PUTs of an upload: object stores answer each in milliseconds, and a
# VCF Zarr is thousands of small chunks.
_UPLOAD_THREADS = 8


def upload_tree(
    storage: Storage,
    source: pathlib.Path,
    prefix: str,
    *,
    transform: Callable[[str, bytes], bytes] | None = None,
    skip: Callable[[str], bool] | None = None,
) -> dict[str, int]:
    """Copy every file under ``source`` to ``prefix/<relative path>``.

    ``transform(name, data)`` (sealing) rewrites each file's bytes; ``skip(name)``
    leaves files out. Returns each written key with its size, for verification.
    """
    names = [
        path.relative_to(source).as_posix()
        for path in iter_files(source)
        if skip is None or not skip(path.relative_to(source).as_posix())
    ]

    def put(name: str) -> tuple[str, int]:
        key = f"{prefix}/{name}"
        if transform is None:
            storage.upload(key, source / name)
            return key, (source / name).stat().st_size
        data = transform(name, (source / name).read_bytes())
        storage.write(key, data)
        return key, len(data)

    with concurrent.futures.ThreadPoolExecutor(_UPLOAD_THREADS) as pool:
        return dict(pool.map(put, names))
