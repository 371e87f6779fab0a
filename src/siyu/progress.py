"""A small progress protocol so long jobs report progress without knowing who shows it:
the CLI passes a rich progress bar, the console a row the page polls, tests nothing."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NoProgress:
    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass
