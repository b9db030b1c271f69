"""The route loop, written once, as generators of I/O operations.

`answer_loop` (one reply) and `stream_loop` (chunks) hold every decision of a
call: which route next, admission by its breakers, its rate-limit slot, retries
on tenacity's own iteration protocol (`Retrying.iter`: attempt, sleep, or done),
what a failure means (classified once, by `CallState`), falling over, stream
rescue. They do no I/O: they yield operations (`Send`, `Open`, `Read`, `Close`,
`Sleep`, `Acquire`, `Deliver`, in `_ops.py`) that a driver (`_drivers.py`)
performs with a transport and sends the result back (or throws the error in).
The sync, async, stream and astream drivers, and the agent middleware, only
call, `await` and `yield`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from tenacity import DoSleep, RetryCallState, Retrying

from langchain_holysheep.resilience._call import DELIVERED_ATTR, Attempt, CallState
from langchain_holysheep.resilience._exceptions import (
    DeadlineExceededError,
    RetriesExhaustedError,
    StreamInterruptedError,
)
from langchain_holysheep.resilience._ops import (
    Acquire,
    Close,
    Deliver,
    Loop,
    Op,
    Open,
    Read,
    Send,
    Sleep,
)
from langchain_holysheep.resilience._policy import Action, Decision
from langchain_holysheep.resilience._rescue import StreamRescue
from langchain_holysheep.resilience._routes import Route
from langchain_holysheep.resilience._streams import ReadTimeout, StreamWatch

if TYPE_CHECKING:
    from langchain_holysheep.resilience._router import Router

__all__ = [
    "Found",
    "Loop",
    "answer_loop",
    "stream_loop",
]


Body = Callable[[int, Route, Attempt], Loop]
Found: TypeAlias = tuple[int, Route, Any]


@dataclass
class _Holder:
    attempt: Attempt | None = None
    decisions: dict[int, Decision] = field(default_factory=dict)

    def decide(self, exc: BaseException) -> Decision:
        return self.decisions[id(exc)]


# -- the loop over routes ------------------------------------------------------------
def _stop_error(
    call: CallState, exc: BaseException, rescue: StreamRescue | None
) -> BaseException:
    """What a STOP decision raises."""
    if rescue is not None and rescue.broken is not None:
        rescue.refused(exc)
        return rescue.error(call.failures)
    if isinstance(exc, DeadlineExceededError):
        err = call.all_failed()
        err.__cause__ = exc
        return err
    if isinstance(exc, StreamInterruptedError):
        exc.failures = list(call.failures)
    return exc


def routes_loop(
    router: Router, call: CallState, body: Body, rescue: StreamRescue | None = None
) -> Generator[Op, Any, Found | None]:
    """Try the routes in order; the first success is `(index, route, value)`.

    `body(idx, route, attempt)` is one attempt's I/O (a sub-loop). Returns
    `None` when no route is left; raises what a STOP decision raises.
    """
    while True:
        slot = call.next_route(need_prefill=rescue is not None and rescue.active)
        if slot is None:
            return None
        idx, route = slot
        if rescue is not None and rescue.active:
            rescue.trying(route.name)
        found = yield from _route_attempts(router, call, idx, route, body, rescue)
        if found is not None:
            return found


def _route_attempts(
    router: Router,
    call: CallState,
    idx: int,
    route: Route,
    body: Body,
    rescue: StreamRescue | None,
) -> Generator[Op, Any, Found | None]:
    """Every attempt on one route.

    After a failed attempt tenacity decides: retry (after a sleep) or give up.
    The first attempt needs no decision, so the retrying state is only built
    once an attempt has failed; a route that answers at once never pays for it.
    """
    holder = _Holder()
    retrying: Retrying | None = None
    state: RetryCallState | None = None
    while True:
        if retrying is not None and state is not None:
            try:
                do = retrying.iter(state)
            except RetriesExhaustedError as exc:
                last = exc.last_error
                call.route_failed(
                    idx, route, last, holder.decide(last), exhausted=exc.reason
                )
                if rescue is not None:
                    rescue.refused(last)
                return None
            except Exception as exc:  # not retryable: tenacity re-raised it
                _leave(call, idx, route, exc, holder.decide(exc), rescue)
                return None
            if isinstance(do, DoSleep):
                state.prepare_for_next_attempt()
                yield Sleep(float(do))
                continue
        try:
            attempt = yield from _admit(call, idx, route)
        except Exception as exc:  # refused before any request
            _leave(call, idx, route, exc, call.refused(idx, route, exc), rescue)
            return None
        try:
            value = yield from body(idx, route, attempt)
        except BaseException as exc:
            failed = call.attempt_failed(attempt, exc)
            if failed is None:  # cancelled: no verdict
                raise
            holder.decisions[id(exc)] = failed
            if retrying is None or state is None:
                retrying, state = _retrying(router, call, route, holder)
            state.set_exception(sys.exc_info())  # type: ignore[arg-type]
        else:
            return idx, route, value


def _retrying(
    router: Router, call: CallState, route: Route, holder: _Holder
) -> tuple[Retrying, RetryCallState]:
    """The tenacity state of a route whose first attempt failed."""
    retrying = router.retry_policy(route).retrying(
        error_policy=call.policy,
        deadline=call.deadline,
        before_sleep=call.on_retry,
        gateway=route.is_gateway,
        decide=holder.decide,
    )
    retrying.begin()
    return retrying, RetryCallState(retrying, fn=None, args=(), kwargs={})


def _leave(
    call: CallState,
    idx: int,
    route: Route,
    exc: BaseException,
    decision: Decision,
    rescue: StreamRescue | None,
) -> None:
    """Leave a route after a FALLBACK decision; raise on STOP."""
    call.route_failed(idx, route, exc, decision)
    if decision.action is Action.STOP:
        raise _stop_error(call, exc, rescue) from None
    if rescue is not None:
        rescue.refused(exc)


def _admit(call: CallState, idx: int, route: Route) -> Generator[Op, Any, Attempt]:
    """Claim the breakers, then the rate-limit slot; the attempt has begun."""
    attempt = call.admit(idx, route)
    limiter = call.rate_limits.get(route.key)
    if limiter is not None:
        try:
            yield Acquire(limiter, call.req.rate_tokens, call)
        except BaseException:
            attempt.release()
            raise
    return call.begin(attempt)


def _bound(router: Router, route: Route, call: CallState) -> float | None:
    """The wall-clock bound of one attempt: its timeout, capped by the deadline.

    A short grace lets the HTTP client's own timeout (same value, passed as
    `timeout=`) report first when it applies, with its more specific reason
    (e.g. a silent route); the bound catches replies that trickle in.
    """
    cap = call.deadline.cap(router.limits(route)[0])
    if cap is None:
        return None
    return cap + min(_GRACE_MAX, _GRACE_MIN + _GRACE_FRACTION * cap)


_GRACE_MIN, _GRACE_FRACTION, _GRACE_MAX = 0.05, 0.05, 0.5


# -- one reply -----------------------------------------------------------------------
def answer_loop(
    router: Router, call: CallState, messages: Any, kwargs: dict[str, Any]
) -> Generator[Op, Any, Found | None]:
    """One reply with failover: `(index, route, reply)` of the route that answered.

    `None` when every route failed or was skipped (`call.final_error()` says
    why); a STOP decision raises.
    """

    def body(idx: int, route: Route, attempt: Attempt) -> Loop:
        kw = router.route_kwargs(route, call, kwargs, stream=False)
        _, first_token, stall = router.limits(route)
        bound = _bound(router, route, call)
        reply = yield Send(route, messages, kw, bound, call, (first_token, stall))
        call.attempt_ok(attempt)
        return reply

    return (yield from routes_loop(router, call, body))


# -- streams -------------------------------------------------------------------------
@dataclass(slots=True)
class Opened:
    """A streamed attempt: the chunks read so far, and the rest if live."""

    attempt: Attempt
    watch: StreamWatch
    prelude: list[Any]
    source: Any = None  # a live source still to drain, or None when complete


def _read(source: Any, watch: StreamWatch) -> Generator[Op, Any, Any]:
    """The next chunk under the watch's limits (`None` at the end)."""
    timeout, kind = watch.next_timeout()
    try:
        chunk = yield Read(source, timeout)
    except ReadTimeout:
        err = watch.expired(kind)
        if err is None:
            return None
        raise err from None
    if chunk is None:
        return None
    watch.saw(chunk)
    late = watch.late()
    if late is not None:
        raise late
    return chunk


def _delivered(exc: BaseException, watch: StreamWatch) -> BaseException:
    """Mark a failed stream's error with the text it had delivered (billed)."""
    if watch.text:
        with contextlib.suppress(AttributeError, TypeError):
            setattr(exc, DELIVERED_ATTR, "".join(watch.text))
    return exc


def _drain(source: Any, watch: StreamWatch, out: list[Any] | None) -> Loop:
    """Read to the end (into `out`, or delivered live); raise if cut short."""
    while not watch.complete:
        chunk = yield from _read(source, watch)
        if chunk is None:
            break
        if out is None:
            yield Deliver(chunk)
        else:
            out.append(chunk)
    err = watch.incomplete()
    if err is not None:
        raise err


def _open(
    router: Router,
    call: CallState,
    route: Route,
    attempt: Attempt,
    messages: Any,
    kwargs: dict[str, Any],
    live: bool,
) -> Generator[Op, Any, Opened]:
    """Open a stream and read it up to its first content (live) or its end."""
    watch = router.watch(route, call, kwargs)
    kw = router.route_kwargs(route, call, kwargs, stream=True)
    source = yield Open(route, messages, kw, watch.needs_timer)
    prelude: list[Any] = []
    try:
        while not watch.complete:
            chunk = yield from _read(source, watch)
            if chunk is None:
                break
            prelude.append(chunk)
            if live and watch.content:
                return Opened(attempt, watch, prelude, source)
        err = watch.incomplete()
        if err is not None:
            raise err
    except BaseException as exc:
        yield Close(source)
        wrapped = _delivered(watch.wrap(exc), watch)
        if wrapped is exc:
            raise
        raise wrapped from exc
    yield Close(source)
    call.attempt_ok(attempt)
    return Opened(attempt, watch, prelude)


def stream_loop(
    router: Router,
    call: CallState,
    messages: Any,
    kwargs: dict[str, Any],
    *,
    live: bool,
) -> Loop:
    """A streamed call with failover; see `Router.stream` for the two modes."""
    rescue = StreamRescue(messages, router.chunks.continuation)

    def body(idx: int, route: Route, attempt: Attempt) -> Loop:
        msgs = rescue.messages()
        return (yield from _open(router, call, route, attempt, msgs, kwargs, live))

    last: Any = None
    while True:
        found = yield from routes_loop(router, call, body, rescue)
        if found is None:
            if rescue.broken is not None:
                raise rescue.error(call.failures)
            raise call.final_error()
        idx, route, opened = found
        try:
            for chunk in opened.prelude:
                last = chunk
                yield Deliver(chunk)
            if opened.source is not None:
                yield from _drain(opened.source, opened.watch, None)
        except Exception as exc:
            if opened.source is None:
                raise
            yield Close(opened.source)
            wrapped = _delivered(opened.watch.wrap(exc), opened.watch)
            decision = call.attempt_failed(opened.attempt, wrapped)
            assert decision is not None
            rescue.broke(route.name, wrapped, opened.watch)
            call.route_failed(idx, route, wrapped, decision)
            if decision.action is Action.STOP or rescue.tool_calls:
                raise rescue.error(call.failures) from exc
            call.continued_from.append(route.name)
            continue
        except BaseException:
            opened.attempt.release()
            raise
        if opened.source is not None:
            yield Close(opened.source)
            call.attempt_ok(opened.attempt)
        yield Deliver(router.chunks.final(last, dict(call.metadata(idx, route))))
        return
