"""Reservation ids: unique across threads and processes."""

from __future__ import annotations

import os
import re
import threading

import pytest

from langchain_holysheep.state._checks import new_id


def test_ids_are_24_hex_digits_and_never_repeat_across_threads() -> None:
    seen: list[list[str]] = [[] for _ in range(8)]

    def take(out: list[str]) -> None:
        out.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=take, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [i for out in seen for i in out]
    assert len(set(ids)) == len(ids) == 40_000
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_its_own_ids() -> None:
    read, write = os.pipe()
    mine = new_id()
    pid = os.fork()
    if pid == 0:  # the child: send one id and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    theirs = new_id()
    assert len({mine, child, theirs}) == 3
    assert child[:16] != mine[:16] == theirs[:16]  # another process, other bits
