"""Carrying the tracking context variables into threads and executor work."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar

import pytest

from langchain_holysheep.spend import get_holysheep_callback
from langchain_holysheep.spend.tracking import _context as context
from langchain_holysheep.spend.tracking import _threads as threads

from .conftest import FakeChat

marker: ContextVar[str | None] = ContextVar("test_marker", default=None)
other: ContextVar[str | None] = ContextVar("test_not_carried", default=None)


class Seen(threading.Thread):
    """A thread subclass with its own `run`, as libraries write them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: tuple[str | None, str | None] = (None, None)

    def run(self) -> None:
        self.seen = (marker.get(), other.get())


def test_install_is_idempotent_and_carries_only_the_registered_variables() -> None:
    threads.carry_into_threads(marker)
    start, submit = threading.Thread.start, ThreadPoolExecutor.submit
    threads.carry_into_threads(marker)
    threads.carry_into_threads(marker, context._block_var)
    assert (threading.Thread.start, ThreadPoolExecutor.submit) == (start, submit)
    assert threads.carried_variables().count(marker) == 1
    assert other not in threads.carried_variables()

    m, o = marker.set("block"), other.set("unrelated")
    try:
        thread = Seen()
        thread.start()
        thread.join()
        with ThreadPoolExecutor(1) as pool:
            in_pool = pool.submit(lambda: (marker.get(), other.get())).result()
    finally:
        marker.reset(m)
        other.reset(o)
    assert thread.seen == in_pool == ("block", None)
    assert "run" not in thread.__dict__  # the wrapper is gone after the run


def test_pooled_threads_reset_the_value_after_each_work_item() -> None:
    threads.carry_into_threads(marker)
    with ThreadPoolExecutor(1) as pool:
        token = marker.set("first")
        try:
            assert pool.submit(marker.get).result() == "first"
        finally:
            marker.reset(token)
        assert pool.submit(marker.get).result() is None
        token = marker.set("second")
        try:
            assert pool.submit(marker.get).result() == "second"
        finally:
            marker.reset(token)


def test_a_thread_started_twice_keeps_its_run() -> None:
    threads.carry_into_threads(marker)
    thread = Seen()
    thread.start()
    thread.join()
    token = marker.set("block")
    try:
        with pytest.raises(RuntimeError, match="once"):
            thread.start()
    finally:
        marker.reset(token)
    assert "run" not in thread.__dict__


def test_unknown_scope_is_refused(fake: FakeChat) -> None:
    with (
        pytest.raises(ValueError, match="scope"),
        get_holysheep_callback(scope="thread"),  # type: ignore[arg-type]
    ):
        fake.invoke("x")
