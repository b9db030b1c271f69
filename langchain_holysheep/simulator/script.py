"""The fault-script form of a fault: `{"fault": <kind>, **params}`.

What fault-script files and `Fault.from_dict` / `Fault.to_dict` read and write:
each kind's parameters are its constructor's arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_holysheep.simulator.checks import FaultSpecError
from langchain_holysheep.simulator.faults import POLICY_PREFIX, Fault

__all__ = ["fault_from_dict", "fault_to_dict"]


def fault_from_dict(data: Mapping[str, Any], *, where: str = "") -> Fault:
    """Build a fault from its fault-script form (see `Fault.from_dict`).

    Raises:
        FaultSpecError: naming the field at fault.
    """
    prefix = f"{where}." if where else ""
    if not isinstance(data, Mapping):
        raise FaultSpecError(
            where, f'expected an object like {{"fault": "ok"}}, got {data!r}'
        )
    kind = data.get("fault")
    if kind not in _PARAMS:
        raise FaultSpecError(
            f"{prefix}fault",
            f"unknown fault {kind!r}; expected one of {', '.join(sorted(_PARAMS))}",
        )
    allowed = _PARAMS[kind]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "fault":
            continue
        if key not in allowed:
            names = ", ".join(allowed) or "none"
            raise FaultSpecError(
                f"{prefix}{key}",
                f"not a parameter of fault {kind!r} (parameters: {names})",
            )
        kwargs[key] = value
    try:
        return _FACTORIES[kind](**kwargs)
    except FaultSpecError as exc:
        raise FaultSpecError(f"{prefix}{exc.field}", exc.problem) from None
    except TypeError as exc:
        raise FaultSpecError(
            where, f"bad parameters for fault {kind!r}: {exc}"
        ) from None


def fault_to_dict(fault: Fault) -> dict[str, Any]:
    """The fault-script form of `fault` (see `Fault.to_dict`)."""
    out: dict[str, Any] = {"fault": fault.kind}
    values: dict[str, Any] = {
        "latency": fault.delay,
        "seconds": fault.seconds if fault.kind != "latency" else fault.delay,
        "code": fault.http_status,
        "retry_after": fault.retry_after,
        "retry_after_ms": fault.retry_after_ms,
        "message": fault.message,
        "code_str": fault.error_code,
        "after_chunks": fault.after_chunks,
        "hang": fault.hang,
        "context_window": fault.context_window,
        "shape": fault.shape,
        "payload": fault.payload,
        "interval": fault.interval,
        "error_type": fault.error_type,
    }
    if fault.kind == "content_policy" and fault.message:
        values["reason"] = fault.message.removeprefix(POLICY_PREFIX)
    for key in _PARAMS[fault.kind]:
        if values.get(key) is not None:
            out[key] = values[key]
    return out


_FACTORIES: dict[str, Callable[..., Fault]] = {
    "ok": Fault.ok,
    "latency": Fault.latency,
    "status": Fault.status,
    "context_length_exceeded": Fault.context_length_exceeded,
    "content_policy": Fault.content_policy,
    "model_not_found": Fault.model_not_found,
    "slow_first_token": Fault.slow_first_token,
    "silent": Fault.silent,
    "reset": Fault.reset,
    "stream_cut": Fault.stream_cut,
    "stream_stall": Fault.stream_stall,
    "malformed_chunk": Fault.malformed_chunk,
    "no_done": Fault.no_done,
    "bad_reply": Fault.bad_reply,
    "error_reply": Fault.error_reply,
    "slow_drip": Fault.slow_drip,
    "empty_chunks": Fault.empty_chunks,
}

_PARAMS: dict[str, tuple[str, ...]] = {
    "ok": ("latency",),
    "latency": ("seconds",),
    "status": ("code", "retry_after", "retry_after_ms", "message", "code_str"),
    "context_length_exceeded": ("context_window",),
    "content_policy": ("reason",),
    "model_not_found": (),
    "slow_first_token": ("seconds",),
    "silent": (),
    "reset": (),
    "stream_cut": ("after_chunks",),
    "stream_stall": ("after_chunks", "seconds"),
    "malformed_chunk": ("after_chunks", "payload"),
    "no_done": ("hang",),
    "bad_reply": ("shape",),
    "error_reply": ("code", "message", "code_str", "error_type", "after_chunks"),
    "slow_drip": ("interval",),
    "empty_chunks": ("after_chunks", "seconds", "interval"),
}
