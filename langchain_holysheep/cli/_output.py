"""Terminal output: rich tables and progress in a terminal, plain text when piped.

When stdout is not a terminal (a pipe, a file, a test runner) nothing goes through
rich: tables are space-aligned plain text with no ANSI codes and no box drawing,
so `holysheep models | grep gpt` and `> file.txt` give clean text. Progress bars
go to stderr and only when stderr is a terminal. `HOLYSHEEP_FORCE_PLAIN=1`
forces plain text in a terminal too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:  # rich is imported only when a terminal shows its output
    from rich.console import Console
    from rich.progress import Progress

__all__ = ["Col", "Output", "ProgressLike", "numeric_cols"]


@dataclass(frozen=True)
class Col:
    """A table column: a header, right-aligned numbers, and free text that may wrap.

    In a narrow terminal only `wrap` columns are folded onto more lines; ids and
    numbers are never broken.
    """

    header: str
    numeric: bool = False
    wrap: bool = False


def numeric_cols(*headers: str) -> list[Col]:
    """Right-aligned number columns, one per header."""
    return [Col(header, numeric=True) for header in headers]


def _is_tty(stream: TextIO) -> bool:
    if os.environ.get("HOLYSHEEP_FORCE_PLAIN"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def plain_table(columns: Sequence[Col], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as space-aligned plain text (a header line, then one line per row)."""
    cells = [[c.header for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for row in cells:
        parts = []
        for i, (value, col) in enumerate(zip(row, columns, strict=True)):
            last = i == len(columns) - 1
            if col.numeric:
                parts.append(value.rjust(widths[i]))
            else:
                parts.append(value if last else value.ljust(widths[i]))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


class ProgressLike(Protocol):
    """What commands need from a progress display."""

    def advance(self, n: int = 1) -> None:
        """Mark `n` more items done."""

    def describe(self, text: str) -> None:
        """Change the description shown next to the bar."""


class _NullProgress:
    def advance(self, n: int = 1) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


class _RichProgress:
    def __init__(self, progress: Progress, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        self._progress.update(self._task, description=text)


class Output:
    """Where a command writes: results to stdout, notes and errors to stderr.

    Args:
        stdout: the result stream (default: the current `sys.stdout`).
        stderr: the diagnostics stream (default: the current `sys.stderr`).
    """

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None):
        self._stdout = stdout
        self._stderr = stderr

    @property
    def stdout(self) -> TextIO:
        """The result stream."""
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> TextIO:
        """The diagnostics stream."""
        return self._stderr or sys.stderr

    @property
    def rich(self) -> bool:
        """Whether stdout is a terminal (rich tables and colours)."""
        return _is_tty(self.stdout)

    def _console(self, stream: TextIO) -> Console:
        from rich.console import Console

        return Console(file=stream, highlight=False, soft_wrap=False)

    # -- text -----------------------------------------------------------------
    def line(self, text: str = "", style: str | None = None) -> None:
        """Print a line of result text (styled only in a terminal)."""
        if self.rich and style:
            self._console(self.stdout).print(text, style=style, markup=False)
        else:
            print(text, file=self.stdout, flush=True)

    def heading(self, text: str) -> None:
        """A section heading."""
        if self.rich:
            self._console(self.stdout).rule(text, style="cyan")
        else:
            print(f"\n== {text} ==", file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """A diagnostic line on stderr."""
        if _is_tty(self.stderr):
            self._console(self.stderr).print(text, style="dim", markup=False)
        else:
            print(text, file=self.stderr, flush=True)

    def warn(self, text: str) -> None:
        """A warning on stderr."""
        self._stderr_line(f"warning: {text}", "yellow")

    def error(self, text: str) -> None:
        """An error on stderr."""
        self._stderr_line(f"error: {text}", "bold red")

    def _stderr_line(self, text: str, style: str) -> None:
        if _is_tty(self.stderr):
            self._console(self.stderr).print(text, style=style, markup=False)
        else:
            print(text, file=self.stderr, flush=True)

    # -- tables ---------------------------------------------------------------
    def table(
        self,
        columns: Sequence[Col],
        rows: Sequence[Sequence[Any]],
        *,
        title: str | None = None,
        caption: str | None = None,
    ) -> None:
        """Print a table: a rich table in a terminal, aligned plain text otherwise.

        A rich table wider than the terminal is printed as plain text too, so
        no id or number is ever cut.
        """
        text = plain_table(columns, rows)
        if title:
            text = f"{title}\n{text}"
        if caption:
            text = f"{text}\n{caption}"
        if not self.rich:
            print(text, file=self.stdout, flush=True)
            return
        from rich import box
        from rich.table import Table

        table = Table(
            title=title,
            caption=caption,
            title_justify="left",
            caption_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for col in columns:
            table.add_column(
                col.header,
                justify="right" if col.numeric else "left",
                overflow="fold",
                no_wrap=not col.wrap,
            )
        for row in rows:
            table.add_row(*(str(v) for v in row))
        self.rich_or_plain(table, text)

    def rich_or_plain(self, renderable: Any, text: str) -> None:
        """Print `renderable` if stdout is a terminal wide enough, else `text`."""
        if self.rich:
            console = self._console(self.stdout)
            wide = console.options.update_width(100_000)
            if console.measure(renderable, options=wide).maximum <= console.width:
                console.print(renderable)
                return
        print(text, file=self.stdout, flush=True)

    # -- progress -------------------------------------------------------------
    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[ProgressLike]:
        """A progress bar on stderr when it is a terminal, else nothing."""
        if not _is_tty(self.stderr):
            yield _NullProgress()
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(
            *columns, console=self._console(self.stderr), transient=True
        ) as progress:
            task = progress.add_task(description, total=total)
            yield _RichProgress(progress, task)
