from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from langchain_holysheep.spend import global_tracker, reset_global_tracker
from langchain_holysheep.spend.tracking import _context as context
from langchain_holysheep.spend.tracking._context import (
    SPEND_REPORT_ENV,
    TRACK_SPEND_ENV,
    EnvSpendHandler,
    write_global_report,
)

from .conftest import FakeChat


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_atexit_registered", True)  # no report at pytest exit
    reset_global_tracker()


def test_env_var_prices_every_call_into_the_global_tracker(
    monkeypatch: pytest.MonkeyPatch, fake: FakeChat
) -> None:
    created: list[EnvSpendHandler] = []
    original = EnvSpendHandler.__init__

    def spy(self: EnvSpendHandler) -> None:
        original(self)
        created.append(self)

    monkeypatch.setattr(EnvSpendHandler, "__init__", spy)
    fake.invoke("off")
    assert global_tracker().report().calls == 0
    monkeypatch.setenv(TRACK_SPEND_ENV, "1")
    fake.invoke("a")
    list(fake.stream("b"))
    fake.batch(["c", "d"])
    assert global_tracker().report().calls == 4
    assert len(created) >= 3 and len({id(h) for h in created}) == len(created)
    assert all(h.tracker is global_tracker() for h in created)
    monkeypatch.setenv(TRACK_SPEND_ENV, "false")
    fake.invoke("off again")
    assert global_tracker().report().calls == 4


def test_env_and_block_handlers_both_count(
    monkeypatch: pytest.MonkeyPatch, fake: FakeChat
) -> None:
    monkeypatch.setenv(TRACK_SPEND_ENV, "1")
    with context.get_holysheep_callback() as cb:
        fake.invoke("x")
    assert cb.report().calls == 1 and global_tracker().report().calls == 1


def test_atexit_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(context, "_atexit_registered", False)
    monkeypatch.setattr(context.atexit, "register", calls.append)
    EnvSpendHandler()
    EnvSpendHandler()
    assert calls == [write_global_report]


def test_write_report_to_files_and_stderr(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeChat,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(TRACK_SPEND_ENV, "1")
    fake.invoke("x")
    out = tmp_path / "spend.json"
    monkeypatch.setenv(SPEND_REPORT_ENV, str(out))
    write_global_report()
    data = json.loads(out.read_text())
    assert data["calls"] == 1 and Decimal(data["cost"]) == Decimal("0.02")
    text = tmp_path / "spend.txt"
    write_global_report(str(text))
    assert "gpt-4.1" in text.read_text() and "TOTAL" in text.read_text()
    monkeypatch.delenv(SPEND_REPORT_ENV)
    write_global_report()
    assert "gpt-4.1" in capsys.readouterr().err
