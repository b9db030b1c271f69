"""Batch input and the resumable results file.

The results file is JSON Lines, one object per item, keyed by `"id"`. It is
append-only while a job runs, and every line is flushed and fsync'd before the
item counts as done, so an interruption (Ctrl-C, SIGTERM, a crash, a power cut)
loses at most the items that were still in flight, never a finished one. On
restart the file is read back: finished ids are skipped, a torn last line (a
crash mid-write) is cut off, and the job continues where it stopped, so no item
is lost or written twice.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from langchain_holysheep.spend.pricing._files import NotUtf8Error, decode_utf8

__all__ = [
    "InputError",
    "Item",
    "ResultsBusyError",
    "ResultsFile",
    "read_items",
    "read_utf8",
]


class InputError(ValueError):
    """The input or results file cannot be used; the message says why."""


class ResultsBusyError(InputError):
    """Another process holds the results file."""


@dataclass(frozen=True)
class Item:
    """One input line: its id, 1-based line number and fields."""

    id: str
    line: int
    data: dict[str, Any]


def read_utf8(path: Path) -> str:
    """A text file's content (UTF-8, an optional BOM dropped).

    Raises:
        OSError: the file cannot be read.
        InputError: it is not UTF-8; the message names the line and column.
    """
    data = path.read_bytes()
    try:
        return decode_utf8(data)
    except NotUtf8Error as exc:
        raise InputError(
            f"{path}, line {exc.line}: {exc}; save the file as UTF-8, e.g. "
            f"iconv -f latin1 -t utf-8 {path} > "
            f"{path.with_name(path.stem + '.utf8' + path.suffix)}"
        ) from None


def read_items(path: Path, id_field: str = "id") -> list[Item]:
    """Read a JSONL input file (blank lines skipped).

    Items without `id_field` get the id `line-<n>` (stable while the file does
    not change).

    Raises:
        InputError: unreadable file, a line that is not a JSON object, or a
            duplicate id.
    """
    try:
        text = read_utf8(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    items: list[Item] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}, line {n}: expected a JSON object")
        raw_id = data.get(id_field)
        item_id = f"line-{n}" if raw_id is None else str(raw_id)
        if item_id in seen:
            raise InputError(
                f"{path}, line {n}: duplicate id {item_id!r} (first on line "
                f"{seen[item_id]}); ids must be unique for a job to resume"
            )
        seen[item_id] = n
        items.append(Item(item_id, n, data))
    return items


@dataclass
class ResultsFile:
    """The append-only, fsync'd JSONL results of a batch job.

    Args:
        path: the results file (created if missing).

    Attributes:
        done: the last result of every id already in the file.
        repaired: bytes cut off a torn last line when the file was opened.
        created: the file did not exist before `open()`.

    Used as a context manager, a file created by `open()` is removed again if
    the block fails before any result was written, so a job that could not
    start leaves no empty results file behind.
    """

    path: Path
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    repaired: int = 0
    created: bool = False
    _fh: IO[bytes] | None = None

    def open(self, *, drop_errors: bool = False) -> ResultsFile:
        """Read back earlier results, repair a torn tail, lock and open for append.

        Args:
            drop_errors: rewrite the file without its error results (so the
                failed items run again and each id still appears once).

        Raises:
            InputError: the file holds something other than results, or another
                process is writing it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.created = not self.path.exists()
        fh: IO[bytes] = open(self.path, "a+b")  # noqa: SIM115 - kept open
        try:
            _lock(fh, self.path)
            fh.seek(0)
            data = fh.read()
            good = self._parse(data)
            if good < len(data):
                self.repaired = len(data) - good
                fh.truncate(good)
                _sync(fh)
            if drop_errors and any(r.get("status") != "ok" for r in self.done.values()):
                self.done = {
                    k: r for k, r in self.done.items() if r.get("status") == "ok"
                }
                fh = self._rewrite(fh)
        except BaseException:
            fh.close()
            raise
        fh.seek(0, os.SEEK_END)
        self._fh = fh
        return self

    def _parse(self, data: bytes) -> int:
        """Fill `done` from the file; return the length of its intact part.

        Every complete line must be a result (`{"id": ..., "status": ...}`). An
        unterminated last line is a write cut short by a crash if it starts
        like a result: it is dropped (its item runs again). Anything else means
        the file is not ours, and nothing is changed.
        """
        pos = 0
        lines = data.split(b"\n")
        for i, raw in enumerate(lines):
            if i == len(lines) - 1:  # after the last newline
                if raw and not raw.startswith(_PREFIX):
                    raise self._not_ours(i + 1)
                return pos
            try:
                record = json.loads(raw)
            except ValueError:
                raise self._not_ours(i + 1) from None
            if not isinstance(record, dict) or not {"id", "status"} <= record.keys():
                raise self._not_ours(i + 1)
            self.done[str(record["id"])] = record
            pos += len(raw) + 1
        return pos

    def _not_ours(self, line: int) -> InputError:
        return InputError(
            f"{self.path}, line {line}: not a batch result (is this the output of "
            "another program, or the input file?); nothing was changed. Use a new "
            "--output file."
        )

    def _rewrite(self, fh: IO[bytes]) -> IO[bytes]:
        """Replace the file by `done` (atomically); return the new locked handle."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as out:
            for record in self.done.values():
                out.write(_encode(record))
            _sync(out)
        os.replace(tmp, self.path)
        fh.close()  # the lock went with the old inode: lock the new file
        new = open(self.path, "a+b")  # noqa: SIM115 - kept open for the job
        _lock(new, self.path)
        return new

    def append(self, record: dict[str, Any]) -> None:
        """Write one result durably (flush + fsync) before returning."""
        if self._fh is None:
            raise RuntimeError("ResultsFile.open() first")
        self._fh.write(_encode(record))
        _sync(self._fh)
        self.done[str(record["id"])] = record

    def close(self, *, discard_if_empty: bool = False) -> None:
        """Release the lock and close the file.

        Args:
            discard_if_empty: remove the file if `open()` created it and it is
                still empty (nothing was written).
        """
        if self._fh is None:
            return
        try:
            if (
                discard_if_empty
                and self.created
                and os.fstat(self._fh.fileno()).st_size == 0
            ):
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # still locked: no other job writes it
        finally:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(discard_if_empty=exc_type is not None)

    def prior_cost(self) -> Decimal:
        """The total cost recorded by earlier runs (USD)."""
        total = Decimal(0)
        for record in self.done.values():
            try:
                total += Decimal(str(record.get("cost") or 0))
            except InvalidOperation:
                continue
        return total

    def finished_ids(self) -> Iterator[str]:
        """Ids with a result in the file."""
        return iter(self.done)


_PREFIX = b'{"id":'


def _encode(record: dict[str, Any]) -> bytes:
    record = {"id": record["id"], **record}  # "id" first: see `_parse`
    text = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _sync(fh: IO[bytes]) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _lock(fh: IO[bytes], path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ResultsBusyError(
            f"{path} is being written by another `holysheep batch`; wait for it "
            "to finish or use another --output file"
        ) from None
