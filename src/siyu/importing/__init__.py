"""Batch import of contacts, orders, events, products, stores, staff and acquisition spend from
CSV or JSONL files.

Formats (full description in docs/import-formats.md):

- **JSONL** (``.jsonl``/``.ndjson``): one JSON object per line, in exactly the shape the REST API
  takes (``contact: {kind, value}``, ``items: [...]``, ``identities: [...]``).
- **CSV** (``.csv``, header row): flat columns, one row per record; an empty cell means "not
  given". Contacts: one column per identity kind (``phone``, ``email``, ``member_no``,
  ``wechat_unionid``, ``wechat_openid`` + ``wechat_app_id``, ``wecom_external_userid``,
  ``app_user_id``, ``douyin_id``, ``xiaohongshu_id``, ``meituan_id``), the profile fields,
  ``campaign``/``qr_state``/``first_touch_store_code``/``first_touch_staff_code`` (first touch),
  ``store_code``, ``owner_staff_code``, ``referred_by_<kind>``, ``consent_<channel>`` and
  ``attributes`` (JSON). Orders and events name their contact by ``contact_id`` or
  ``contact_<kind>`` (the first non-empty one counts); order ``items`` and ``refunds`` and event
  ``properties`` are JSON cells. Products, stores and staff use the API field names as columns;
  spend has ``channel``, ``campaign``, ``month`` (``2026-03``), ``amount`` and ``note``.

Every row is validated by the same pydantic schema as the API and written through the owning
app's services with partial semantics: good rows are kept, each bad row is reported with the
line it starts on and written to ``<name>.rejects.<ext>`` beside the input with an ``_error``
column. Files are streamed in batches (memory does not grow with the file, apart from 16 bytes per
row for the duplicate-id check); files that are not UTF-8 are read as GB18030 (GBK) and the
summary says so. Re-importing a file is a no-op.

On PostgreSQL, CSV orders and events are staged with COPY and written set-at-a-time in SQL
(``siyu.importing.staged``); only the rows those checks do not accept take the per-row path, so
the outcome is the same and a clean file costs no Python per row beyond parsing it.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.db import DatabaseError, transaction
from pydantic import ValidationError

from siyu.errors import DomainError, ValidationFailed
from siyu.importing.entities import ENTITIES, Entity, SeenIds, describe
from siyu.importing.files import (
    Record,
    RejectsWriter,
    csv_header,
    csv_record,
    csv_records,
    csv_rows,
    detect_encoding,
    jsonl_records,
    open_text,
)
from siyu.importing.formats import CSV_FORMATS, REJECT_COLUMNS, CellError, Mapped, jsonl_row
from siyu.importing.staged import STAGED_KEYS, StagedWriter, staged_supported
from siyu.ingest import BatchResult, RowError
from siyu.progress import NoProgress, Progress
from siyu.tenancy.models import Workspace

__all__ = ["ENTITY_NAMES", "ImportReport", "run_import"]

ENTITY_NAMES = tuple(ENTITIES)
#: Errors kept in memory for the report; all are counted and all go to the rejects file.
MAX_ERRORS_KEPT = 1000
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class ImportReport:
    entity: str
    path: Path
    format: str
    encoding: str
    encoding_note: str = ""
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    rejects_path: Path | None = None
    elapsed_seconds: float = 0.0

    def summary(self) -> str:
        rate = (
            f", {self.total / self.elapsed_seconds:,.0f} rows/s" if self.elapsed_seconds > 0 else ""
        )
        lines = [
            f"Imported {self.entity} from {self.path.name} ({self.format.upper()}, {self.encoding}) "
            f"in {self.elapsed_seconds:.1f} s{rate}.",
            f"{self.total:,} rows: {self.created:,} created, {self.updated:,} updated, "
            f"{self.unchanged:,} already stored, {self.rejected:,} rejected.",
        ]
        if self.encoding_note:
            lines.append(f"Encoding: {self.encoding_note}.")
        if self.rejects_path:
            lines.append(f"Rejected rows with their reasons: {self.rejects_path}")
            lines += [f"  line {line}: {reason}" for line, reason in self.errors[:5]]
            if self.rejected > 5:
                lines.append(f"  … and {self.rejected - 5:,} more")
        return "\n".join(lines)


def run_import(
    *,
    workspace: Workspace,
    entity: str,
    path: Path,
    encoding: str | None = None,
    progress: Progress | None = None,
    batch_size: int = 10_000,
) -> ImportReport:
    """Each batch is written in its own transaction, so an interrupted import keeps what it wrote
    and re-running the file finishes the rest."""
    started = time.perf_counter()
    spec = ENTITIES.get(entity)
    if spec is None:
        raise ValidationFailed(
            "unknown_entity", f"unknown entity {entity!r}; choose one of {', '.join(ENTITY_NAMES)}"
        )
    path = Path(path)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValidationFailed("unknown_format", f"{path.name}: expected a .csv or .jsonl file")
    try:
        codec, note = detect_encoding(path, encoding)
        binary, text = open_text(path, codec)
        size = path.stat().st_size
    except OSError as exc:
        raise ValidationFailed(
            "unreadable_file", f"cannot read {path}: {exc.strerror or exc}"
        ) from exc
    progress = progress or NoProgress()
    report = ImportReport(entity, path, fmt, codec, note)
    with text:
        header = None
        if fmt == "csv":
            header = csv_header(text, path)
            _check_header(entity, header, path)
        rejects = RejectsWriter(path, fmt, header)
        seen = SeenIds()
        progress.start(f"{entity} ← {path.name}", size)
        done = 0

        def advance() -> None:
            nonlocal done
            position = binary.tell()
            progress.advance(position - done)
            done = position

        collecting = gc.isenabled()
        # A batch is hundreds of thousands of objects alive together until it is written, which
        # the cyclic collector would rescan again and again (a quarter of the CPU time). Reference
        # counting frees them when the batch ends; the few cycles a batch leaves are collected
        # right after it, so memory still follows the batch, not the file.
        gc.disable()
        try:
            if header is not None and staged_supported(entity, fmt):
                _import_staged(
                    spec,
                    workspace,
                    header,
                    csv_rows(text, path),
                    batch_size,
                    rejects,
                    report,
                    seen,
                    advance,
                )
            else:
                records: Iterator[Record] = (
                    csv_records(text, header, path) if header is not None else jsonl_records(text)
                )
                for batch in _batched(records, batch_size):
                    _import_batch(spec, workspace, batch, fmt, rejects, report, seen)
                    del batch
                    gc.collect(0)
                    advance()
        finally:
            if collecting:
                gc.enable()
            report.rejects_path = rejects.close()
    report.rejected = rejects.count
    report.elapsed_seconds = time.perf_counter() - started
    return report


def _batched(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(records)
    while batch := list(itertools.islice(it, max(size, 1))):
        yield batch


def _check_header(entity: str, header: list[str], path: Path) -> None:
    spec = CSV_FORMATS[entity]
    known = set(spec.columns) | set(REJECT_COLUMNS)
    problems = []
    unknown = [h for h in header if h not in known]
    if unknown:
        problems.append(f"unknown column(s): {', '.join(repr(h) for h in unknown)}")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.append(f"repeated column(s): {', '.join(repeated)}")
    missing = [group for group in spec.required if not set(group) & set(header)]
    if missing:
        names = [group[0] if len(group) == 1 else "one of " + "/".join(group) for group in missing]
        problems.append(f"missing required column(s): {'; '.join(names)}")
    if problems:
        raise ValidationFailed(
            "invalid_header",
            f"{path.name}: "
            + "; ".join(problems)
            + f" (expected columns: {', '.join(spec.columns)})",
        )


def _import_staged(
    spec: Entity,
    workspace: Workspace,
    header: list[str],
    rows: Iterator[tuple[int, list[str]]],
    batch_size: int,
    rejects: RejectsWriter,
    report: ImportReport,
    seen: SeenIds,
    advance: Callable[[], None],
) -> None:
    """PostgreSQL, CSV orders and events: each chunk is staged and written set-at-a-time in SQL
    (``siyu.importing.staged``); the rows it leaves go through ``_import_batch`` like any other."""
    writer = StagedWriter(spec.name, header, workspace)
    key = STAGED_KEYS[spec.name]
    key_at, prefix, width = header.index(key), f"{key}|", len(header)
    try:
        while chunk := list(itertools.islice(rows, max(batch_size, 1))):
            _staged_chunk(
                spec, workspace, header, chunk, writer, key_at, prefix, width, rejects, report, seen
            )
            del chunk
            gc.collect(0)
            advance()
    finally:
        writer.close()


def _staged_chunk(
    spec: Entity,
    workspace: Workspace,
    header: list[str],
    chunk: list[tuple[int, list[str]]],
    writer: StagedWriter,
    key_at: int,
    prefix: str,
    width: int,
    rejects: RejectsWriter,
    report: ImportReport,
    seen: SeenIds,
) -> None:
    n = len(chunk)
    # Python's strip, not SQL's: it is what the ordinary path (and so the API) means by a value.
    stripped = [[cell.strip() or None for cell in cells] for _, cells in chunk]
    lines = np.fromiter((line for line, _ in chunk), dtype=np.int64, count=n)
    keys = [s[key_at] if key_at < len(s) else None for s in stripped]
    hashes = np.fromiter((hash(prefix + k) if k else 0 for k in keys), dtype=np.int64, count=n)
    fits = np.fromiter((len(cells) <= width for _, cells in chunk), dtype=bool, count=n)
    candidates = np.flatnonzero(fits & np.fromiter((k is not None for k in keys), bool, n))
    # An id twice in the chunk, or one an earlier chunk accepted: every such row takes the
    # ordinary path, which reports the repeats naming the first line.
    h = hashes[candidates]
    order = np.argsort(h, kind="stable")
    same = h[order][1:] == h[order][:-1]
    repeated = np.zeros(len(candidates), dtype=bool)
    repeated[order[1:][same]] = True
    repeated[order[:-1][same]] = True
    repeated |= seen.first_lines_hashed(h) > 0
    staged = candidates[~repeated]
    outcome = writer.write([(int(lines[i]), stripped[i]) for i in staged]) if len(staged) else None
    ordinary = np.ones(n, dtype=bool)
    if outcome is not None:
        created, accepted, left = outcome
        taken = staged[~np.isin(lines[staged], np.asarray(left, dtype=np.int64))]
        ordinary[taken] = False
        seen.add_hashed(hashes[taken], lines[taken])
        report.total += len(taken)
        report.created += created
        report.unchanged += accepted - created
    batch = [csv_record(*chunk[i], header) for i in np.flatnonzero(ordinary)]
    if batch:
        _import_batch(spec, workspace, batch, "csv", rejects, report, seen)


def _import_batch(
    spec: Entity,
    workspace: Workspace,
    batch: list[Record],
    fmt: str,
    rejects: RejectsWriter,
    report: ImportReport,
    seen: SeenIds,
) -> None:
    refused: list[tuple[Record, str]] = []

    def reject(record: Record, reason: str) -> None:
        refused.append((record, reason))

    convert = CSV_FORMATS[spec.name].convert if fmt == "csv" else jsonl_row
    items, records, mapped = [], [], []
    for record in batch:
        report.total += 1
        if record.data is None:
            reject(record, record.error)
            continue
        try:
            row = convert(record.data)
            items.append(spec.schema.model_validate(row.data))
        except CellError as exc:
            reject(record, f"{exc.column}: {exc.message}")
            continue
        except ValidationError as exc:
            reject(
                record, "; ".join(f"{row.column_for(p)}: {m}" if p else m for p, m in describe(exc))
            )
            continue
        records.append(record)
        mapped.append(row)

    keys = [spec.keys(item) for item in items]
    duplicates = _duplicates(keys, [r.line for r in records], mapped, seen)
    for i, reason in duplicates.items():
        reject(records[i], reason)
    keep = [i for i in range(len(items)) if i not in duplicates]
    result, errors = _write(spec, workspace, [items[i] for i in keep])
    failed = set()
    for err in errors:
        i = keep[err.index]
        failed.add(i)
        reject(
            records[i],
            f"{mapped[i].column_for(err.path)}: {err.message}" if err.path else err.message,
        )
    accepted = [i for i in keep if i not in failed]
    seen.add(
        [k for i in accepted for k in _seen_keys(keys[i])],
        [records[i].line for i in accepted for _ in keys[i]],
    )
    report.created += result.created
    report.updated += result.updated
    report.unchanged += result.unchanged
    # Rejections come from several stages; within a batch they are reported in file order.
    for record, reason in sorted(refused, key=lambda r: r[0].line):
        rejects.write(record, reason)
        if len(report.errors) < MAX_ERRORS_KEPT:
            report.errors.append((record.line, reason))


def _seen_keys(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{path.rsplit('.', 1)[-1]}|{value}" for path, value in pairs]


def _duplicates(
    keys: list[list[tuple[str, str]]], lines: list[int], mapped: list[Mapped], seen: SeenIds
) -> dict[int, str]:
    """{index: reason} for rows whose id an earlier row of the file (this batch or before) has."""
    flat = [
        (i, path, value, key)
        for i, pairs in enumerate(keys)
        for (path, value), key in zip(pairs, _seen_keys(pairs), strict=True)
    ]
    earlier = seen.first_lines([key for *_, key in flat])
    in_batch: dict[str, int] = {}
    out: dict[int, str] = {}
    for (i, path, value, key), line in zip(flat, earlier, strict=True):
        if i in out:
            continue
        first = line or in_batch.get(key)
        if first:
            out[i] = f"{mapped[i].column_for(path)}: {value!r} already appears on line {first}"
        else:
            in_batch[key] = lines[i]
    return out


def _write(spec: Entity, workspace: Workspace, items: list) -> tuple[BatchResult, list[RowError]]:
    """A batch the database refuses as a whole (a constraint, a refund total) is retried row by
    row, so one bad row costs its own rejection, not its 4,999 neighbours."""
    if not items:
        return BatchResult(), []
    try:
        with transaction.atomic():
            return spec.write(workspace, items)
    except (DomainError, DatabaseError):
        pass
    result, errors = BatchResult(), []
    for i, item in enumerate(items):
        try:
            with transaction.atomic():
                one, errs = spec.write(workspace, [item])
        except DomainError as exc:
            errors.append(RowError(i, exc.path or "", exc.message))
            continue
        except DatabaseError as exc:
            errors.append(RowError(i, "", f"refused by the database: {str(exc).splitlines()[0]}"))
            continue
        result.created, result.updated, result.unchanged = (
            result.created + one.created,
            result.updated + one.updated,
            result.unchanged + one.unchanged,
        )
        errors += [RowError(i, e.path, e.message) for e in errs]
    return result, errors
