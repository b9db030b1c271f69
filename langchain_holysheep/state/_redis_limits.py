"""Breaker and rate-limit operations of `RedisStore` as script calls."""

from __future__ import annotations

from typing import Any

from langchain_holysheep.state._breaker_types import BreakerView
from langchain_holysheep.state._rate_types import RateGrant, RateView
from langchain_holysheep.state._redis_call import US, ScriptCall, us
from langchain_holysheep.state._requests import BreakerOp, RateOp

__all__ = ["breaker_call", "rate_call"]


def _view(key: str, reply: list[Any]) -> BreakerView:
    st, fail, ok, opened, retry_in, inflight, trips, lf, prev, _ = reply
    return BreakerView(
        key=key,
        state=st,
        failures=int(fail),
        successes=int(ok),
        opened_at=None if int(opened) < 0 else int(opened) / US,
        retry_in=int(retry_in) / US,
        probe_in_flight=bool(int(inflight)),
        trips=int(trips),
        last_failure=lf,
        previous=prev or None,
    )


def breaker_call(op: BreakerOp[Any], prefix: str, now: str) -> ScriptCall:
    """The script call of a breaker step (`now`: "" for the server's clock)."""
    width, n, threshold, rate, minreq, cooldown = 1.0, 1, "", "", 1, 0
    rules = op.rules
    if rules is not None:  # some operations need no rules
        width = us(rules.window) / rules.buckets
        n = rules.buckets
        if rules.failure_threshold is not None:
            threshold = str(rules.failure_threshold)
        if rules.failure_rate is not None:
            rate = repr(float(rules.failure_rate))
        minreq, cooldown = rules.minimum_requests, us(rules.cooldown)
    args = [now, op.op, repr(float(width)), n, threshold, rate, minreq, cooldown]

    def answer(reply: list[Any]) -> Any:
        return op.answer(_view(op.key, reply), bool(int(reply[9])))

    keys = [f"{prefix}breaker:{{{op.key}}}"]
    return ScriptCall("breaker", keys, [*args, op.reason, us(op.ttl), op.count], answer)


def _num(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def _f(value: Any) -> float | None:
    return None if value in ("", None) else float(value)


def _grant(reply: list[Any]) -> RateGrant:
    return RateGrant(bool(int(reply[0])), float(reply[1]) / US)


def _rate_view(reply: list[Any]) -> RateView:
    blocked = _f(reply[2])
    return RateView(_f(reply[0]), _f(reply[1]), (blocked or 0.0) / US)


def rate_call(op: RateOp[Any], prefix: str, now: str) -> ScriptCall:
    """The script call of a rate-limit operation."""
    spec = op.spec
    if spec is None:
        per, req, req_cap, tok, tok_cap = 1.0, None, None, None, None
    else:
        per, req, tok = spec.per, spec.requests, spec.tokens
        req_cap, tok_cap = spec.request_capacity, spec.token_capacity
    limits = [_num(per * US), _num(req), _num(req_cap), _num(tok), _num(tok_cap)]
    wait = _num(min(op.max_wait, 1e12) * US)
    asked = [_num(op.tokens), wait, _num(op.requests), _num(op.penalty * US)]
    keys = [f"{prefix}rate:{{{op.key}}}"]
    call = ScriptCall("rate", keys, [now, op.op, *limits, *asked])
    if op.op == "acquire":
        return ScriptCall(call.script, keys, call.args, _grant)
    if op.op == "view":
        return ScriptCall(call.script, keys, call.args, _rate_view)
    return call
