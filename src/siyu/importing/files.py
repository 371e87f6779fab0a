"""Reading import files as a stream of records with the physical line each starts on, and
writing the rows we refuse to a rejects file beside the input.

Nothing here holds more than one record (plus the text and csv modules' read-ahead buffers) in
memory, so a 2 GB file streams like a 2 KB one.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from siyu.errors import ValidationFailed

_SCAN_CHUNK = 1 << 20
#: Large enough for an order with 500 items in its JSON cell; the csv default (128 KiB) is not.
csv.field_size_limit(16 << 20)


@dataclass
class Record:
    """One record: ``line`` is where it starts; ``raw`` is what a rejects file writes back
    (the cells of a CSV row, the text of a JSONL line); ``data`` is None when it did not parse."""

    line: int
    raw: list[str] | str
    data: dict[str, Any] | None
    error: str = ""


def _decodes(path: Path, encoding: str) -> int | None:
    """Scans the whole file in 1 MiB chunks; returns the line of the first byte that does not
    decode, or None. Costs about a second per GB and saves a half-imported file."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    lines = 1
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_SCAN_CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return lines + chunk.count(b"\n", 0, exc.start)
            if not chunk:
                return None
            lines += chunk.count(b"\n")


def detect_encoding(path: Path, encoding: str | None) -> tuple[str, str]:
    """Returns (codec, note). Without ``encoding``: UTF-8 (a BOM is dropped), else GB18030 — the
    superset of GBK that Chinese Excel writes — and the note says we transcoded."""
    if encoding:
        try:
            name = codecs.lookup(encoding).name
        except LookupError as exc:
            raise ValidationFailed("unknown_encoding", f"unknown encoding {encoding!r}") from exc
        bad = _decodes(path, name)
        if bad is not None:
            raise ValidationFailed(
                "wrong_encoding", f"{path.name} is not valid {encoding}: line {bad} does not decode"
            )
        return name, ""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        name = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        name = "utf-16"
    else:
        name = "utf-8"
    bad = _decodes(path, name)
    if bad is None:
        return name, ""
    if name == "utf-8" and _decodes(path, "gb18030") is None:
        return "gb18030", f"not UTF-8 (line {bad}); read as GB18030/GBK"
    raise ValidationFailed(
        "wrong_encoding",
        f"{path.name} is not valid UTF-8 (line {bad}) nor GB18030/GBK; pass the file's encoding, e.g. encoding='big5'",
    )


def open_text(path: Path, encoding: str) -> tuple[IO[bytes], io.TextIOWrapper]:
    """The binary handle is returned too: its position is the bytes read, for progress."""
    binary = path.open("rb")
    return binary, io.TextIOWrapper(binary, encoding=encoding, newline="")


def csv_header(text: io.TextIOWrapper, path: Path) -> list[str]:
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ValidationFailed("unreadable_file", f"{path.name} line 1: {exc}") from exc
    if not header or not any(h.strip() for h in header):
        raise ValidationFailed("empty_file", f"{path.name} has no header row")
    return [h.strip() for h in header]


def csv_rows(text: io.TextIOWrapper, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, its cells) for each non-blank record after the header. With
    multi-line quoted cells a record's line is where it starts."""
    reader = csv.reader(text)
    last = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValidationFailed(
                "unreadable_file", f"{path.name} line {last + 1}: {exc}"
            ) from exc
        line, last = last + 1, 1 + reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        yield line, cells


def csv_record(line: int, cells: list[str], header: list[str]) -> Record:
    if len(cells) > len(header):
        return Record(
            line, cells, None, f"row has {len(cells)} cells but the header has {len(header)}"
        )
    # Empty cells are "not given"; Excel drops trailing ones, so a short row is fine too.
    return Record(
        line, cells, {header[i]: value for i, cell in enumerate(cells) if (value := cell.strip())}
    )


def csv_records(text: io.TextIOWrapper, header: list[str], path: Path) -> Iterator[Record]:
    """Continues after the header."""
    for line, cells in csv_rows(text, path):
        yield csv_record(line, cells, header)


def jsonl_records(text: io.TextIOWrapper) -> Iterator[Record]:
    for line, raw in enumerate(text, start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        try:
            obj = json.loads(stripped)
        except ValueError as exc:
            yield Record(line, stripped, None, f"not valid JSON ({exc.msg} at character {exc.pos})")
            continue
        if not isinstance(obj, dict):
            yield Record(line, stripped, None, f"expected a JSON object, got {type(obj).__name__}")
            continue
        yield Record(line, stripped, obj)


class RejectsWriter:
    """Opened on the first reject only, so a clean import leaves no file behind. CSV rejects are
    UTF-8 with a BOM (Excel opens them right); a stale file from an earlier run is removed."""

    def __init__(self, source: Path, fmt: str, header: list[str] | None):
        self.path = source.with_name(f"{source.stem}.rejects.{fmt}")
        self._fmt, self._header = fmt, header
        self._fh: IO[str] | None = None
        self._csv: Any = None
        self.count = 0

    def write(self, record: Record, reason: str) -> None:
        if self._fh is None:
            self._fh = self.path.open(
                "w", encoding="utf-8-sig" if self._fmt == "csv" else "utf-8", newline=""
            )
            if self._fmt == "csv":
                self._csv = csv.writer(self._fh)
                self._csv.writerow([*(self._header or []), "_line", "_error"])
        self.count += 1
        if self._fmt == "csv":
            self._csv.writerow([*record.raw, str(record.line), reason])
            return
        if record.data is None:
            obj: dict[str, Any] = {"_line": record.line, "_error": reason, "_raw": record.raw}
        else:
            obj = {**json.loads(record.raw), "_line": record.line, "_error": reason}
        self._fh.write(json.dumps(obj, ensure_ascii=False) + "\n")

    def close(self) -> Path | None:
        if self._fh is not None:
            self._fh.close()
            return self.path
        self.path.unlink(missing_ok=True)
        return None
