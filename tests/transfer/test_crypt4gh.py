"""Crypt4GH readers: plaintext ranges, streams and re-encrypted headers, checked
against the crypt4gh reference tools and against plain slicing of the plaintext."""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import pathlib
import random
import subprocess
import sys

import pytest
from crypt4gh import header as c4gh_header
from crypt4gh import sodium as c4gh_sodium
from hypothesis import given, settings
from hypothesis import strategies as st

from genomenode.config import Secret
from genomenode.errors import InputError, StoreError
from genomenode.store.crypt import (
    encrypt_file,
    generate_keypair,
    read_private_key,
    read_public_key,
)
from genomenode.transfer.crypt4gh import (
    CIPHER_SEGMENT_SIZE,
    PUBLIC_KEY_FIELD,
    SEGMENT_SIZE,
    Crypt4GHReader,
    generate_user_keypair,
    public_key_from_text,
)

BIN = pathlib.Path(sys.prefix) / "bin"
CRYPT4GH = str(BIN / "crypt4gh")
CRYPT4GH_KEYGEN = str(BIN / "crypt4gh-keygen")
SIZES = [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 300_001]
BIG = 300_001
BOUNDARY_OFFSETS = sorted(
    {
        edge + delta
        for edge in range(0, 6 * SEGMENT_SIZE, SEGMENT_SIZE)
        for delta in (-1, 0, 1)
        if edge + delta >= 0
    }
)


@dataclasses.dataclass
class Keys:
    """A keypair on disk and the raw keys."""

    secret_path: pathlib.Path
    public_path: pathlib.Path
    secret: bytes
    public: bytes
    passphrase: str = ""


def _plaintext(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _node_keys(directory: pathlib.Path, name: str = "node") -> Keys:
    secret_path, public_path = directory / f"{name}.sec", directory / f"{name}.pub"
    generate_keypair(secret_path, public_path)
    return Keys(
        secret_path,
        public_path,
        read_private_key(secret_path),
        read_public_key(public_path),
    )


def _keygen(directory: pathlib.Path, name: str, passphrase: str = "") -> Keys:
    """A keypair made by the reference crypt4gh-keygen."""
    secret_path, public_path = directory / f"{name}.sec", directory / f"{name}.pub"
    options = [] if passphrase else ["--nocrypt"]
    # Without a terminal (new session), getpass reads the passphrase from stdin.
    subprocess.run(
        [CRYPT4GH_KEYGEN, *options, "--sk", str(secret_path), "--pk", str(public_path)],
        input=f"{passphrase}\n{passphrase}\n".encode(),
        capture_output=True,
        start_new_session=True,
        check=True,
    )
    return Keys(
        secret_path,
        public_path,
        read_private_key(secret_path, Secret(passphrase)),
        read_public_key(public_path),
        passphrase,
    )


def _cli(
    *arguments: str, data: bytes, passphrase: str = ""
) -> subprocess.CompletedProcess:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("C4GH")
    }
    if passphrase:
        environment["C4GH_PASSPHRASE"] = passphrase
    return subprocess.run(
        [CRYPT4GH, *arguments], input=data, capture_output=True, env=environment
    )


def _cli_decrypt(path_or_bytes: pathlib.Path | bytes, keys: Keys, *extra: str) -> bytes:
    data = (
        path_or_bytes.read_bytes()
        if isinstance(path_or_bytes, pathlib.Path)
        else path_or_bytes
    )
    result = _cli(
        "decrypt",
        "--sk",
        str(keys.secret_path),
        *extra,
        data=data,
        passphrase=keys.passphrase,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _store(
    directory: pathlib.Path, plaintext: bytes, keys: Keys, name: str
) -> pathlib.Path:
    source, target = directory / f"{name}.plain", directory / f"{name}.c4gh"
    source.write_bytes(plaintext)
    encrypt_file(source, target, [keys.public])
    return target


def _handmade(
    path: pathlib.Path,
    plaintext: bytes,
    recipients: list[bytes],
    *,
    num_session_keys: int = 1,
    edit_list: list[int] | None = None,
) -> None:
    """A Crypt4GH file built with the crypt4gh library: segment i is encrypted with
    session key i mod num_session_keys; an edit-list packet if asked."""
    session_keys = [os.urandom(32) for _ in range(num_session_keys)]
    packets = [c4gh_header.make_packet_data_enc(0, key) for key in session_keys]
    if edit_list is not None:
        packets.append(c4gh_header.make_packet_data_edit_list(edit_list))
    writer_secret = os.urandom(32)
    keys = [(0, writer_secret, recipient) for recipient in recipients]
    header = c4gh_header.serialize(
        [
            encrypted
            for packet in packets
            for encrypted in c4gh_header.encrypt(packet, keys)
        ]
    )
    body = bytearray()
    segment = bytearray(CIPHER_SEGMENT_SIZE)
    for number, start in enumerate(range(0, len(plaintext), SEGMENT_SIZE)):
        length = c4gh_sodium.chacha20poly1305_encrypt(
            segment,
            plaintext[start : start + SEGMENT_SIZE],
            session_keys[number % num_session_keys],
        )
        body += segment[:length]
    path.write_bytes(header + body)


def _kept_bytes(plaintext: bytes, edit_list: list[int]) -> bytes:
    """The slow twin: skip, keep, skip, ... and keep the rest after a final skip."""
    kept = bytearray()
    position = 0
    keep = False
    for length in edit_list:
        if keep:
            kept += plaintext[position : position + length]
        position += length
        keep = not keep
    if keep:
        kept += plaintext[position:]
    return bytes(kept)


@pytest.fixture(scope="module")
def directory(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("crypt4gh")


@pytest.fixture(scope="module")
def node(directory) -> Keys:
    return _node_keys(directory)


@pytest.fixture(scope="module")
def stored(directory, node) -> dict[int, tuple[bytes, pathlib.Path]]:
    """Plaintexts of each size in SIZES and their files as the node stores them."""
    files = {}
    for size in SIZES:
        plaintext = _plaintext(size, seed=size)
        files[size] = (plaintext, _store(directory, plaintext, node, f"stored-{size}"))
    return files


@pytest.fixture(scope="module")
def researcher(directory) -> Keys:
    return _keygen(directory, "researcher")


# Interoperability with the reference tools


@pytest.mark.parametrize("size", SIZES)
def test_stored_file_decrypts_with_the_cli(stored, node, size):
    plaintext, path = stored[size]
    assert _cli_decrypt(path, node) == plaintext
    reader = Crypt4GHReader(path, node.secret)
    assert reader.plaintext_size == size
    assert reader.header_size + reader.encrypted_body_size == path.stat().st_size
    assert reader.read(0, size + 10) == plaintext


def test_cli_encrypted_file_reads_whole_and_in_ranges(directory, node):
    plaintext = _plaintext(5 * SEGMENT_SIZE + 4321, seed=7)
    result = _cli("encrypt", "--recipient_pk", str(node.public_path), data=plaintext)
    assert result.returncode == 0, result.stderr
    path = directory / "by-cli.c4gh"
    path.write_bytes(result.stdout)
    reader = Crypt4GHReader(path, node.secret)
    assert reader.plaintext_size == len(plaintext)
    assert reader.read(0, len(plaintext)) == plaintext
    assert b"".join(reader.iter_range(chunk_bytes=100_000)) == plaintext
    for offset, length in [
        (0, 1),
        (SEGMENT_SIZE - 1, 2),
        (SEGMENT_SIZE, SEGMENT_SIZE),
        (5 * SEGMENT_SIZE + 17, 1000),
        (3 * SEGMENT_SIZE - 5, 2 * SEGMENT_SIZE + 10),
        (len(plaintext) - 3, 100),
    ]:
        assert reader.read(offset, length) == plaintext[offset : offset + length]


def _researcher_keys(directory: pathlib.Path, made_by: str) -> Keys:
    name = f"researcher-{made_by}"
    if made_by == "crypt4gh-keygen":
        return _keygen(directory, name)
    if made_by == "crypt4gh-keygen-passphrase":
        return _keygen(directory, name, passphrase="tell no one")
    passphrase = "tell no one" if made_by == "genomenode-passphrase" else ""
    secret_path, public_path = directory / f"{name}.sec", directory / f"{name}.pub"
    generate_user_keypair(secret_path, public_path, passphrase or None)
    return Keys(
        secret_path,
        public_path,
        read_private_key(secret_path, Secret(passphrase)),
        read_public_key(public_path),
        passphrase,
    )


@pytest.mark.parametrize(
    "made_by",
    [
        "crypt4gh-keygen",
        "crypt4gh-keygen-passphrase",
        "genomenode",
        "genomenode-passphrase",
    ],
)
def test_reencrypted_file_decrypts_for_the_researcher_only(
    tmp_path, stored, node, made_by
):
    plaintext, path = stored[BIG]
    researcher = _researcher_keys(tmp_path, made_by)
    public_key = public_key_from_text(researcher.public_path.read_text())
    assert public_key == researcher.public
    reader = Crypt4GHReader(path, node.secret)
    handed_over = b"".join(reader.iter_reencrypted(public_key))

    assert _cli_decrypt(handed_over, researcher) == plaintext
    # The node's key signs the new header: the researcher can check the sender.
    checked = _cli_decrypt(
        handed_over, researcher, "--sender_pk", str(node.public_path)
    )
    assert checked == plaintext
    stranger = _keygen(tmp_path, "stranger")
    wrong_sender = _cli(
        "decrypt",
        "--sk",
        str(researcher.secret_path),
        "--sender_pk",
        str(stranger.public_path),
        data=handed_over,
        passphrase=researcher.passphrase,
    )
    assert wrong_sender.returncode != 0
    for other in (stranger, node):
        result = _cli("decrypt", "--sk", str(other.secret_path), data=handed_over)
        assert result.returncode != 0
        assert plaintext[:1000] not in result.stdout


def test_generated_user_keys_encrypt_with_the_cli(tmp_path):
    generate_user_keypair(tmp_path / "me.sec", tmp_path / "me.pub", "pw")
    keys = Keys(
        tmp_path / "me.sec",
        tmp_path / "me.pub",
        read_private_key(tmp_path / "me.sec", Secret("pw")),
        read_public_key(tmp_path / "me.pub"),
        "pw",
    )
    assert oct(keys.secret_path.stat().st_mode & 0o777) == "0o600"
    plaintext = _plaintext(1000)
    result = _cli("encrypt", "--recipient_pk", str(keys.public_path), data=plaintext)
    assert result.returncode == 0, result.stderr
    assert _cli_decrypt(result.stdout, keys) == plaintext


def test_generate_user_keypair_never_overwrites(tmp_path):
    generate_user_keypair(tmp_path / "me.sec", tmp_path / "me.pub", None)
    before = (tmp_path / "me.sec").read_bytes()
    for secret_name, public_name in [("me.sec", "other.pub"), ("other.sec", "me.pub")]:
        with pytest.raises(InputError, match="already exists") as raised:
            generate_user_keypair(tmp_path / secret_name, tmp_path / public_name, None)
        assert raised.value.path is not None
    assert (tmp_path / "me.sec").read_bytes() == before
    assert not (tmp_path / "other.sec").exists()


def test_reencrypted_header_matches_the_library(stored, node, researcher):
    """The slow twin of our packet crypto: crypt4gh's own header decryption."""
    _, path = stored[BIG]
    header = Crypt4GHReader(path, node.secret).reencrypted_header(researcher.public)
    stream = io.BytesIO(header)
    session_keys, edit_list = c4gh_header.deconstruct(
        stream, [(0, researcher.secret, None)], sender_pubkey=node.public
    )
    assert stream.tell() == len(header)
    assert edit_list is None
    with open(path, "rb") as file:
        original_keys, _ = c4gh_header.deconstruct(file, [(0, node.secret, None)])
    assert session_keys == original_keys


# Ranges


@pytest.mark.parametrize("size", SIZES)
def test_boundary_ranges_equal_the_plaintext_slice(stored, node, size):
    plaintext, path = stored[size]
    reader = Crypt4GHReader(path, node.secret)
    for offset in [*BOUNDARY_OFFSETS, size - 1, size, size + 1, 10 * size + 5]:
        if offset < 0:
            continue
        for length in [0, 1, 2, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, BIG]:
            expected = plaintext[offset : offset + length]
            assert reader.read(offset, length) == expected, (offset, length)
            assert b"".join(reader.iter_range(offset, length)) == expected


@settings(max_examples=300, deadline=None)
@given(
    size=st.sampled_from(SIZES),
    offset=st.one_of(
        st.sampled_from(BOUNDARY_OFFSETS), st.integers(0, BIG + SEGMENT_SIZE)
    ),
    length=st.one_of(st.none(), st.integers(0, BIG + 10)),
    chunk_bytes=st.sampled_from([1, 1000, SEGMENT_SIZE, 3 * SEGMENT_SIZE + 1, 1 << 20]),
)
def test_random_ranges_equal_the_plaintext_slice(
    stored, node, size, offset, length, chunk_bytes
):
    plaintext, path = stored[size]
    reader = Crypt4GHReader(path, node.secret)
    expected = (
        plaintext[offset:] if length is None else plaintext[offset : offset + length]
    )
    chunks = list(reader.iter_range(offset, length, chunk_bytes=chunk_bytes))
    assert b"".join(chunks) == expected
    assert all(0 < len(chunk) <= max(chunk_bytes, SEGMENT_SIZE) for chunk in chunks)
    if length is not None:
        assert reader.read(offset, length) == expected


def test_iter_range_chunks_concatenate_to_read(stored, node):
    _, path = stored[BIG]
    reader = Crypt4GHReader(path, node.secret)
    offset = 3 * SEGMENT_SIZE + 11
    chunks = list(reader.iter_range(offset, 100_000, chunk_bytes=SEGMENT_SIZE))
    assert len(chunks) == 2
    assert b"".join(chunks) == reader.read(offset, 100_000)
    assert list(reader.iter_range(BIG, 10)) == []
    assert list(reader.iter_range(5, 0)) == []


def test_negative_arguments_are_refused(stored, node):
    reader = Crypt4GHReader(stored[1][1], node.secret)
    for offset, length in [(-1, 1), (0, -1)]:
        with pytest.raises(ValueError):
            reader.read(offset, length)
        with pytest.raises(ValueError):
            reader.iter_range(offset, length)
    with pytest.raises(ValueError):
        reader.iter_range(0, 1, chunk_bytes=0)
    with pytest.raises(ValueError):
        reader.iter_reencrypted(node.public, chunk_bytes=0)


# Edit lists and several session keys

EDIT_LISTS = [
    [0, 10],
    [100, SEGMENT_SIZE],  # a kept range across a segment boundary
    [70_000, 5, 3, 200_000, 1000],  # ends with a skip: the rest is kept
    [SEGMENT_SIZE - 1, 2, SEGMENT_SIZE, 1, 2, 1],  # short keeps around boundaries
    [5, 10**9],  # keeps past the end
    [3 * SEGMENT_SIZE],  # only a skip: everything after is kept
]


@pytest.mark.parametrize("edit_list", EDIT_LISTS)
def test_edit_list_view_is_the_kept_bytes(tmp_path, node, edit_list):
    plaintext = _plaintext(BIG, seed=3)
    path = tmp_path / "edited.c4gh"
    _handmade(path, plaintext, [node.public], edit_list=edit_list)
    kept = _kept_bytes(plaintext, edit_list)
    assert _cli_decrypt(path, node) == kept
    reader = Crypt4GHReader(path, node.secret)
    assert reader.plaintext_size == len(kept)
    assert reader.read(0, BIG) == kept
    assert b"".join(reader.iter_range(chunk_bytes=7)) == kept
    for offset in range(0, len(kept) + 2, max(1, len(kept) // 17)):
        assert reader.read(offset, 5000) == kept[offset : offset + 5000]


@settings(max_examples=100, deadline=None)
@given(
    edit_list=st.lists(st.integers(0, 2 * SEGMENT_SIZE), min_size=1, max_size=8),
    offset=st.integers(0, BIG),
    length=st.integers(0, BIG),
)
def test_random_edit_lists(directory, node, edit_list, offset, length):
    plaintext = _plaintext(BIG, seed=4)
    path = directory / "random-edits.c4gh"
    _handmade(path, plaintext, [node.public], edit_list=edit_list)
    kept = _kept_bytes(plaintext, edit_list)
    reader = Crypt4GHReader(path, node.secret)
    assert reader.plaintext_size == len(kept)
    assert reader.read(offset, length) == kept[offset : offset + length]
    joined = b"".join(reader.iter_range(offset, length, chunk_bytes=3 * SEGMENT_SIZE))
    assert joined == kept[offset : offset + length]


def test_cli_rearranged_file_reads_as_its_edit_list(tmp_path, stored, node):
    plaintext, path = stored[BIG]
    start, end = 2 * SEGMENT_SIZE + 100, 4 * SEGMENT_SIZE + 7
    result = _cli(
        "rearrange",
        "--sk",
        str(node.secret_path),
        "--range",
        f"{start}-{end}",
        data=path.read_bytes(),
    )
    assert result.returncode == 0, result.stderr
    rearranged = tmp_path / "rearranged.c4gh"
    rearranged.write_bytes(result.stdout)
    kept = _cli_decrypt(rearranged, node)
    # crypt4gh 1.8.6 keeps one byte less than its --range asks for.
    assert kept == plaintext[start : end - 1]
    reader = Crypt4GHReader(rearranged, node.secret)
    assert reader.read(0, BIG) == kept
    assert reader.read(SEGMENT_SIZE, 10) == kept[SEGMENT_SIZE : SEGMENT_SIZE + 10]


def test_reencrypted_edit_list_file_keeps_its_view(tmp_path, node, researcher):
    plaintext = _plaintext(BIG, seed=5)
    edit_list = [70_000, 5, 3, 100_000]
    path = tmp_path / "edited.c4gh"
    _handmade(path, plaintext, [node.public], edit_list=edit_list)
    kept = _kept_bytes(plaintext, edit_list)
    reader = Crypt4GHReader(path, node.secret)
    handed_over = tmp_path / "handed-over.c4gh"
    handed_over.write_bytes(b"".join(reader.iter_reencrypted(researcher.public)))
    assert handed_over.stat().st_size == reader.reencrypted_size(researcher.public)
    assert _cli_decrypt(handed_over, researcher) == kept
    assert Crypt4GHReader(handed_over, researcher.secret).read(0, BIG) == kept


def test_several_session_keys(tmp_path, node, researcher):
    plaintext = _plaintext(BIG, seed=6)
    path = tmp_path / "three-keys.c4gh"
    _handmade(path, plaintext, [node.public], num_session_keys=3)
    assert _cli_decrypt(path, node) == plaintext
    reader = Crypt4GHReader(path, node.secret)
    assert reader.read(0, BIG) == plaintext
    offset = 2 * SEGMENT_SIZE - 3
    assert reader.read(offset, 10) == plaintext[offset : offset + 10]
    handed_over = b"".join(reader.iter_reencrypted(researcher.public))
    assert _cli_decrypt(handed_over, researcher) == plaintext


def test_packets_for_other_readers_are_not_handed_on(tmp_path, node, researcher):
    plaintext = _plaintext(1000)
    other = _node_keys(tmp_path, "other")
    path = tmp_path / "two-readers.c4gh"
    _handmade(path, plaintext, [other.public, node.public])
    reader = Crypt4GHReader(path, node.secret)
    assert reader.read(0, 1000) == plaintext
    header = reader.reencrypted_header(researcher.public)
    assert int.from_bytes(header[12:16], "little") == 1
    assert len(header) + reader.encrypted_body_size == reader.reencrypted_size(
        researcher.public
    )


# Re-encryption streams the stored body untouched


@pytest.mark.parametrize("size", [0, 1, BIG])
def test_reencrypted_stream_is_new_header_and_stored_body(
    stored, node, researcher, size
):
    _, path = stored[size]
    reader = Crypt4GHReader(path, node.secret)
    chunks = list(reader.iter_reencrypted(researcher.public, chunk_bytes=50_000))
    handed_over = b"".join(chunks)
    assert len(handed_over) == reader.reencrypted_size(researcher.public)
    header_size = len(handed_over) - reader.encrypted_body_size
    # The body is the stored bytes themselves, so the work done for the header
    # cannot depend on the size of the file.
    assert handed_over[header_size:] == path.read_bytes()[reader.header_size :]
    assert chunks[0] == handed_over[:header_size]
    assert all(len(chunk) <= 50_000 for chunk in chunks[1:])
    assert header_size == len(reader.reencrypted_header(researcher.public))


def test_header_size_does_not_depend_on_the_file_size(stored, node, researcher):
    sizes = {
        len(Crypt4GHReader(path, node.secret).reencrypted_header(researcher.public))
        for _, path in stored.values()
    }
    assert len(sizes) == 1


def test_bad_recipient_keys_are_refused(stored, node):
    reader = Crypt4GHReader(stored[1][1], node.secret)
    for key in [b"short", bytes(32)]:
        with pytest.raises(ValueError):
            reader.reencrypted_header(key)
        with pytest.raises(ValueError):
            reader.iter_reencrypted(key)


# Errors


def test_wrong_key_names_the_file(tmp_path, stored):
    _, path = stored[BIG]
    stranger = _node_keys(tmp_path, "stranger")
    with pytest.raises(StoreError, match="cannot be decrypted") as raised:
        Crypt4GHReader(path, stranger.secret)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"crypt4g", b"##fileformat=VCFv4.2\n", b"crypt4gh\x02\x00\x00\x00\x01\x00"],
)
def test_not_crypt4gh_names_the_file(tmp_path, node, content):
    path = tmp_path / "plain.vcf"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a Crypt4GH file") as raised:
        Crypt4GHReader(path, node.secret)
    assert str(path) in str(raised.value)


def test_missing_file_names_it(tmp_path, node):
    with pytest.raises(StoreError, match="cannot be read") as raised:
        Crypt4GHReader(tmp_path / "gone.c4gh", node.secret)
    assert "gone.c4gh" in str(raised.value)


def test_damaged_segment_names_the_file_and_segment(tmp_path, stored, node):
    _, path = stored[BIG]
    damaged = tmp_path / "damaged.c4gh"
    content = bytearray(path.read_bytes())
    reader = Crypt4GHReader(path, node.secret)
    content[reader.header_size + 2 * CIPHER_SEGMENT_SIZE + 100] ^= 1
    damaged.write_bytes(content)
    reader = Crypt4GHReader(damaged, node.secret)
    assert reader.read(0, 10) == stored[BIG][0][:10]
    with pytest.raises(StoreError, match="segment 2 does not decrypt") as raised:
        reader.read(2 * SEGMENT_SIZE, 10)
    assert str(damaged) in str(raised.value)


def test_truncated_or_changed_file(tmp_path, stored, node):
    _, path = stored[BIG]
    content = path.read_bytes()
    truncated = tmp_path / "truncated.c4gh"
    truncated.write_bytes(content[: -(BIG % SEGMENT_SIZE) - 20])
    with pytest.raises(StoreError, match="truncated"):
        Crypt4GHReader(truncated, node.secret)
    changed = tmp_path / "changed.c4gh"
    changed.write_bytes(content)
    reader = Crypt4GHReader(changed, node.secret)
    changed.write_bytes(content[:-100])
    with pytest.raises(StoreError, match="changed since"):
        reader.read(0, 10)
    with pytest.raises(StoreError, match="changed since"):
        list(reader.iter_reencrypted(node.public))


def test_repr_shows_no_key(stored, node):
    reader = Crypt4GHReader(stored[1][1], node.secret)
    assert node.secret.hex() not in repr(reader)
    assert "stored-1.c4gh" in repr(reader)


# Public keys as researchers send them


def test_public_key_forms(researcher):
    pem = researcher.public_path.read_text()
    raw = researcher.public
    forms = [
        pem,
        pem.encode(),
        "  " + pem.replace("\n", " ") + "  ",  # line breaks lost in an HTTP header
        base64.b64encode(pem.encode()).decode(),  # base64 -w0 me.pub
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw),
    ]
    for form in forms:
        assert public_key_from_text(form) == raw


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hello world",
        # Fixed bytes: parameters must be the same in every collecting process.
        base64.b64encode(bytes(range(1, 32))).decode(),
        base64.b64encode(bytes(range(1, 34))).decode(),
        base64.b64encode(b"not a key file at all").decode(),
        base64.b64encode(bytes(32)).decode(),  # a low-order point
        "-----BEGIN CRYPT4GH PUBLIC KEY-----\nAAAA\n-----END CRYPT4GH PUBLIC KEY-----",
        "-----BEGIN CRYPT4GH PUBLIC KEY-----\n"
        + base64.b64encode(bytes(range(1, 33))).decode(),
        b"\xff\xfe",
    ],
)
def test_public_key_rejections(text):
    with pytest.raises(InputError) as raised:
        public_key_from_text(text)
    assert raised.value.field == PUBLIC_KEY_FIELD
    assert "Crypt4GH public key" in str(raised.value)


def test_a_private_key_is_not_a_public_key(researcher):
    for text in [
        researcher.secret_path.read_text(),
        base64.b64encode(researcher.secret_path.read_bytes()).decode(),
    ]:
        with pytest.raises(InputError):
            public_key_from_text(text)
