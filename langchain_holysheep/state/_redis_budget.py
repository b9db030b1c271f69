"""The budget operations of `RedisStore` as script calls (`_redis_scripts.py`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langchain_holysheep.state import _requests as rq
from langchain_holysheep.state._budget_types import Refusal, Reservation
from langchain_holysheep.state._redis_call import US, ScriptCall, us
from langchain_holysheep.state._requests import settlement, usage

__all__ = ["budget_call"]


def _window_keys(prefix: str, budget_key: str, window_id: str) -> list[str]:
    h = f"{prefix}budget:{{{budget_key}|{window_id}}}"
    return [h, h + ":leases"]


def _ttl(window_ttl: float | None) -> int:
    return 0 if window_ttl is None else us(window_ttl)


def _usage(reply: list[Any]) -> Any:
    return usage(int(reply[0]), int(reply[1]))


def _settlement(reply: list[Any]) -> Any:
    spent, reserved, counted, late = (int(x) for x in reply)
    return settlement(spent, reserved, counted, bool(late))


def _reserve(req: rq.Reserve, keys: list[str], now: str) -> ScriptCall:
    def answer(reply: list[Any]) -> Reservation | Refusal:
        if int(reply[0]) == 0:
            return req.refusal(int(reply[1]), int(reply[2]))
        return req.reservation(int(reply[1]) / US)

    args = [now, req.units, req.cap_units, us(req.lease_seconds)]
    return ScriptCall("reserve", keys, [*args, _ttl(req.window_ttl), req.id], answer)


def _extend(req: rq.Extend, keys: list[str], now: str) -> ScriptCall:
    res, lease = req.reservation, req.lease_seconds

    def answer(reply: Any) -> Reservation | None:
        if int(reply) < 0:
            return None
        return replace(res, expires_at=int(reply) / US, lease_seconds=float(lease))

    args = [now, res.id, us(lease), _ttl(res.window_ttl)]
    return ScriptCall("extend", keys, args, answer)


def budget_call(req: rq.Request[Any], prefix: str, now: str) -> ScriptCall:
    """The script call of a budget request (`now`: "" for the server's clock)."""
    if isinstance(req, rq.Repeat):
        res = req.reservation
        keys = _window_keys(prefix, res.budget_key, res.window_id)
        return ScriptCall("usage", keys, [now], lambda r: req.answer(_usage(r)))
    if isinstance(req, (rq.Finish, rq.Extend)):
        res = req.reservation
        keys = _window_keys(prefix, res.budget_key, res.window_id)
        if isinstance(req, rq.Extend):
            return _extend(req, keys, now)
        args = [now, res.id, req.units, _ttl(res.window_ttl)]
        return ScriptCall("finish", keys, args, _settlement)
    assert isinstance(req, (rq.Reserve, rq.Charge, rq.Usage, rq.Forget))
    keys = _window_keys(prefix, req.budget_key, req.window_id)
    if isinstance(req, rq.Reserve):
        return _reserve(req, keys, now)
    if isinstance(req, rq.Charge):
        return ScriptCall(
            "charge", keys, [now, req.units, _ttl(req.window_ttl)], _usage
        )
    if isinstance(req, rq.Usage):
        return ScriptCall("usage", keys, [now], _usage)
    return ScriptCall("delete", keys, [])
