"""Find a secret anywhere in an exception: its chain, its arguments, their texts."""

from collections.abc import Iterator


def exception_graph(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception reachable via `__cause__`, `__context__`, args."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        cur = todo.pop()
        if not isinstance(cur, BaseException) or any(cur is s for s in seen):
            continue
        seen.append(cur)
        todo += [cur.__cause__, cur.__context__, *cur.args]
    return seen


def exception_texts(exc: BaseException) -> Iterator[str]:
    """Every str / repr of every exception in the graph and of its arguments."""
    for err in exception_graph(exc):
        yield str(err)
        yield repr(err)
        for arg in err.args:
            yield str(arg)
            yield repr(arg)
        for attr in ("message", "object", "body"):
            value = getattr(err, attr, None)
            if value is not None:
                yield str(value)
                yield repr(value)


def assert_secret_absent(exc: BaseException, *secrets: str) -> None:
    """Fail if any part of `secrets` appears in any text of `exc`'s graph."""
    texts = list(exception_texts(exc))
    for secret in secrets:
        for text in texts:
            assert secret not in text, f"{secret!r} leaked in {text[:200]!r}"
