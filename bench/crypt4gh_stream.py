"""Crypt4GH benchmark: streaming decryption and header re-encryption next to the
crypt4gh command line.

A random plaintext of ``--size-mb`` MiB (default 1024: 1 GiB) is written to a
temporary directory and encrypted to a fresh node key with
:func:`genomenode.store.crypt.encrypt_file`, as ingest stores files; so is a 1 MiB
one. Then, with the files in the page cache (both sides read the same warm file):

- *streaming decrypt*: :meth:`Crypt4GHReader.iter_range` over the whole file, the
  chunks consumed and counted, next to ``crypt4gh decrypt --sk node.sec < file >
  /dev/null`` timed around the process (its start-up, about 0.05 s, included: it
  is what a user of the tool waits for). Best of ``--repeats`` runs each, alternated;
  MB/s are 10^6 bytes of plaintext per second; the ratio is ours over the CLI's.
- *random 1 MiB range*: :meth:`Crypt4GHReader.read` of 1 MiB at random offsets
  (p50 and p99). The CLI has no working equivalent (its ``--range`` returns wrong
  bytes past 64 KiB), so this has no peer.
- *header re-encryption*: :meth:`Crypt4GHReader.reencrypted_header` for a
  researcher's key, on the 1 MiB file and on the big one (median of 200); it does
  not read the body, so the two should be about equal. For scale, the CLI's
  ``crypt4gh reencrypt``, which copies the whole body through.

The temporary directory is removed at the end, also on failure.

Usage: python bench/crypt4gh_stream.py [--size-mb 1024] [--repeats 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

from genomenode.store.crypt import (
    encrypt_file,
    generate_keypair,
    read_private_key,
    read_public_key,
)
from genomenode.transfer.crypt4gh import Crypt4GHReader

CRYPT4GH = str(pathlib.Path(sys.executable).parent / "crypt4gh")
MIB = 1 << 20


def _write_random(path: pathlib.Path, size_mib: int) -> None:
    with open(path, "wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(MIB))


def _stream_ours(reader: Crypt4GHReader) -> float:
    started = time.perf_counter()
    num_bytes = sum(len(chunk) for chunk in reader.iter_range())
    seconds = time.perf_counter() - started
    assert num_bytes == reader.plaintext_size, (num_bytes, reader.plaintext_size)
    return seconds


def _stream_cli(path: pathlib.Path, secret_path: pathlib.Path) -> float:
    with open(path, "rb") as stdin:
        started = time.perf_counter()
        subprocess.run(
            [CRYPT4GH, "decrypt", "--sk", str(secret_path)],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        return time.perf_counter() - started


def _reencrypt_cli(
    path: pathlib.Path, secret_path: pathlib.Path, public_path: pathlib.Path
) -> float:
    with open(path, "rb") as stdin:
        started = time.perf_counter()
        subprocess.run(
            [
                CRYPT4GH,
                "reencrypt",
                "--sk",
                str(secret_path),
                "--recipient_pk",
                str(public_path),
            ],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        return time.perf_counter() - started


def _median_of(function, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="MiB of plaintext")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ranges", type=int, default=200)
    parser.add_argument("--dir", type=pathlib.Path, default=None)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(
        prefix="genomenode-c4gh-bench-", dir=arguments.dir
    ) as temporary:
        directory = pathlib.Path(temporary)
        node_secret, node_public = directory / "node.sec", directory / "node.pub"
        generate_keypair(node_secret, node_public)
        researcher_secret = directory / "researcher.sec"
        researcher_public = directory / "researcher.pub"
        generate_keypair(researcher_secret, researcher_public)
        secret_key = read_private_key(node_secret)
        researcher_key = read_public_key(researcher_public)

        print(f"writing {arguments.size_mb} MiB of random plaintext ...", flush=True)
        big_plain, small_plain = directory / "big.bin", directory / "small.bin"
        _write_random(big_plain, arguments.size_mb)
        _write_random(small_plain, 1)
        big, small = directory / "big.c4gh", directory / "small.c4gh"
        started = time.perf_counter()
        stored = encrypt_file(big_plain, big, [read_public_key(node_public)])
        encrypt_seconds = time.perf_counter() - started
        encrypt_file(small_plain, small, [read_public_key(node_public)])
        big_plain.unlink()
        size = stored.size_plain

        reader = Crypt4GHReader(big, secret_key)
        digest = hashlib.sha256()
        for chunk in reader.iter_range():
            digest.update(chunk)
        assert digest.hexdigest() == stored.sha256_plain, "decrypted bytes differ"

        ours, cli = [], []
        for _ in range(arguments.repeats):
            ours.append(_stream_ours(reader))
            cli.append(_stream_cli(big, node_secret))
        ours_mb_s, cli_mb_s = size / min(ours) / 1e6, size / min(cli) / 1e6

        generator = random.Random(5)
        range_seconds = []
        for _ in range(arguments.ranges):
            offset = generator.randrange(0, max(1, size - MIB))
            started = time.perf_counter()
            data = reader.read(offset, MIB)
            range_seconds.append(time.perf_counter() - started)
            assert len(data) == min(MIB, size - offset)
        range_seconds.sort()
        range_p50 = statistics.median(range_seconds) * 1e3
        range_p99 = range_seconds[int(len(range_seconds) * 0.99) - 1] * 1e3

        small_reader = Crypt4GHReader(small, secret_key)
        header_small = _median_of(
            lambda: small_reader.reencrypted_header(researcher_key), 200
        )
        header_big = _median_of(lambda: reader.reencrypted_header(researcher_key), 200)
        open_small = _median_of(
            lambda: Crypt4GHReader(small, secret_key).reencrypted_header(
                researcher_key
            ),
            200,
        )
        open_big = _median_of(
            lambda: Crypt4GHReader(big, secret_key).reencrypted_header(researcher_key),
            200,
        )
        cli_reencrypt_small = _reencrypt_cli(small, node_secret, researcher_public)
        cli_reencrypt_big = _reencrypt_cli(big, node_secret, researcher_public)

    big_name = f"{arguments.size_mb} MiB"
    print(
        f"\n{big_name} plaintext, {os.cpu_count()} cores; encrypt_file "
        f"{size / encrypt_seconds / 1e6:.0f} MB/s (with both SHA-256 and fsync)\n"
    )
    print("| measure | genomenode | crypt4gh CLI | ours / CLI |")
    print("|---|---:|---:|---:|")
    print(
        f"| streaming decrypt, {big_name} (MB/s, best of {arguments.repeats}) | "
        f"{ours_mb_s:,.0f} | {cli_mb_s:,.0f} | {ours_mb_s / cli_mb_s:.2f}× |"
    )
    print(
        f"| random 1 MiB range read, p50 / p99 (ms) | {range_p50:.2f} / "
        f"{range_p99:.2f} | — | — |"
    )
    print(
        f"| header re-encryption, 1 MiB file (ms) | {header_small * 1e3:.3f} | "
        f"{cli_reencrypt_small * 1e3:.0f} (reencrypt, whole file) | — |"
    )
    print(
        f"| header re-encryption, {big_name} file (ms) | {header_big * 1e3:.3f} | "
        f"{cli_reencrypt_big * 1e3:.0f} (reencrypt, whole file) | — |"
    )
    print(
        f"| open + re-encrypt header, 1 MiB / {big_name} (ms) | "
        f"{open_small * 1e3:.3f} / {open_big * 1e3:.3f} | — | — |"
    )
    print(
        f"\nheader re-encryption, {big_name} file / 1 MiB file: "
        f"{header_big / header_small:.2f} (open + re-encrypt: "
        f"{open_big / open_small:.2f})"
    )


if __name__ == "__main__":
    main()
