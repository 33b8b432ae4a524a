"""Text encodings of exports: detect them, and hand DuckDB UTF-8.

``auto`` recognises UTF-8 (with or without a byte-order mark) and UTF-16 with a byte-order mark;
any other text is taken as Windows-1252, or Latin-1 where a byte is undefined in Windows-1252
(the encodings Western spreadsheet exports use). Anything else must be named with ``--encoding``.
Non-UTF-8 files are transcoded in chunks to a temporary UTF-8 file, so memory stays flat.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cxloop.errors import InputError

CHUNK = 1 << 20
_BINARY_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (an XLSX workbook? name it .xlsx)",
    b"PAR1": "a Parquet file (name it .parquet)",
    b"\x1f\x8b": "a gzip archive (unpack it first)",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
}


@dataclass(frozen=True)
class Detected:
    encoding: str  # a Python codec name
    reason: str
    # Learnt on the way when detection read the whole file (one pass serves all three):
    sha256: str | None = None
    nul_free: bool = False  # no NUL byte anywhere, so no value can hold one


def detect(path: Path) -> Detected:
    """Choose the encoding of a text file, or refuse a binary one with the reason."""
    with path.open("rb") as fh:
        head = fh.read(CHUNK)
    if head.startswith(codecs.BOM_UTF8):
        return Detected("utf-8-sig", "UTF-8 byte-order mark")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Detected("utf-16", "UTF-16 byte-order mark")
    refuse_binary(path, head)
    utf8, sha256, nul_free = _scan(path)
    if utf8:
        return Detected("utf-8", "valid UTF-8", sha256, nul_free)
    if _decodes(path, "cp1252"):
        return Detected("cp1252", "not UTF-8; decodes as Windows-1252", sha256, nul_free)
    return Detected("latin-1", "not UTF-8 nor Windows-1252; read as Latin-1", sha256, nul_free)


def _scan(path: Path) -> tuple[bool, str, bool]:
    """One pass over the file: is it UTF-8, its SHA-256, and whether it is free of NUL bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    digest = hashlib.sha256()
    utf8 = True
    nul_free = True
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            nul_free = nul_free and b"\x00" not in chunk
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    return utf8, digest.hexdigest(), nul_free


def refuse_binary(path: Path, head: bytes) -> None:
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"this is {what}, not a delimited text file", file=str(path))
    if b"\x00" in head:
        offset = head.index(b"\x00")
        raise InputError(f"binary data (a NUL byte at byte {offset}): not a text export", file=str(path))


def check_decodes(path: Path, encoding: str) -> None:
    """Fail with the line of the first byte that is not valid in ``encoding``."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    newlines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start
                line = newlines + chunk[: exc.start].count(b"\n") + 1
                raise InputError(
                    f"byte {bad} is not valid {encoding} ({chunk[exc.start : exc.start + 4]!r}); "
                    "the file has another encoding: try --encoding cp1252 or latin-1",
                    file=str(path),
                    line=line,
                ) from None
            offset += len(chunk)
            newlines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputError(
                f"the file ends inside a multi-byte {encoding} character", file=str(path)
            ) from None


def transcode_to_utf8(path: Path, encoding: str, target: Path) -> Path:
    """Write ``path`` decoded from ``encoding`` as UTF-8 to ``target``, chunk by chunk."""
    check_decodes(path, encoding)
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(CHUNK):
            dst.write(decoder.decode(chunk))
        dst.write(decoder.decode(b"", final=True))
    return target


def _decodes(path: Path, encoding: str) -> bool:
    try:
        check_decodes(path, encoding)
    except InputError:
        return False
    return True
