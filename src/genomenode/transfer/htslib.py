"""VCF text to BCF with htslib itself, as ``bcftools view -Ou`` converts it.

pysam's ``VariantFile.write`` "syncs" INFO/END before writing a record
(``bcf_sync_end``): an END within REF on a non-symbolic record is deleted, so a
BCF written through pysam lacks an INFO/END that ``bcftools view`` keeps. This
module calls the htslib that pysam ships (its ``libchtslib`` exports the C API)
through ctypes, reading and writing records the way bcftools does, untouched.
Only opaque pointers cross the boundary (``htsFile*``, ``bcf_hdr_t*``,
``bcf1_t*``), so no struct layout is assumed; ctypes releases the GIL during
each call, and each conversion has its own handles (thread-safe).
"""

from __future__ import annotations

import ctypes
import functools

import pysam.libchtslib

__all__ = ["HtslibError", "vcf_to_bcf"]


class HtslibError(Exception):
    """htslib could not read the VCF or write the BCF (the message says which)."""


@functools.cache
def _library() -> ctypes.CDLL:
    # Already loaded by `import pysam`: dlopen returns the same handle.
    library = ctypes.CDLL(pysam.libchtslib.__file__)
    pointer, text, integer = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    signatures: dict[str, tuple[list[type], type | None]] = {
        "hts_open": ([text, text], pointer),
        "hts_close": ([pointer], integer),
        "bcf_hdr_read": ([pointer], pointer),
        "bcf_hdr_write": ([pointer, pointer], integer),
        "bcf_hdr_destroy": ([pointer], None),
        "bcf_init": ([], pointer),
        "bcf_destroy": ([pointer], None),
        "bcf_read": ([pointer, pointer, pointer], integer),
        "bcf_write": ([pointer, pointer, pointer], integer),
    }
    for name, (arguments, result) in signatures.items():
        function = getattr(library, name)
        function.argtypes = arguments
        function.restype = result
    return library


def vcf_to_bcf(vcf_path: str, bcf_path: str) -> None:
    """Write the VCF at ``vcf_path`` (plain text) as uncompressed BCF (level-0
    BGZF) at ``bcf_path``, every record as htslib parsed it.

    Raises
    ------
    HtslibError
        The VCF cannot be opened or parsed, or a record cannot be written as
        BCF (htslib prints its reason on stderr).
    """
    library = _library()
    source = library.hts_open(vcf_path.encode(), b"r")
    if not source:
        raise HtslibError("htslib cannot open the VCF text")
    header = record = target = None
    try:
        header = library.bcf_hdr_read(source)
        if not header:
            raise HtslibError("htslib cannot read the VCF header")
        target = library.hts_open(bcf_path.encode(), b"wbu")
        if not target:
            raise HtslibError("htslib cannot open the BCF output")
        if library.bcf_hdr_write(target, header) < 0:
            raise HtslibError("htslib cannot write the BCF header")
        record = library.bcf_init()
        if not record:
            raise MemoryError("htslib cannot allocate a record")
        while (status := library.bcf_read(source, header, record)) == 0:
            if library.bcf_write(target, header, record) < 0:
                raise HtslibError("htslib cannot write a record as BCF")
        if status < -1:
            raise HtslibError("htslib cannot parse a VCF record")
    finally:
        if record:
            library.bcf_destroy(record)
        closed = library.hts_close(target) if target else 0
        if header:
            library.bcf_hdr_destroy(header)
        library.hts_close(source)
    if closed < 0:
        raise HtslibError("htslib cannot finish the BCF output")
