"""The fault plan: which fault each request gets (scripts, profiles, default).

Choice order for a request to model `m`:

1. `m` has a script whose sequence is not exhausted: its next fault;
2. the script is exhausted and has `then`: `then`;
3. `m` has a profile: a random draw from it (its own seeded generator);
4. `m` has a script (exhausted, no `then`): `Fault.ok()`;
5. otherwise the default fault (`Fault.ok()` unless `set_default` changed it).

The plan is thread-safe: tests script it from their thread while the server's
event loop consumes it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from langchain_holysheep.simulator.faults import Fault, FaultSpecError
from langchain_holysheep.simulator.profiles import ModelProfile

__all__ = ["FaultPlan"]

_OK = Fault.ok()


class _Script:
    __slots__ = ("faults", "position", "then")

    def __init__(self, faults: list[Fault], then: Fault | None) -> None:
        self.faults = faults
        self.then = then
        self.position = 0


class FaultPlan:
    """Per-model fault scripts, random profiles and a default fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._default: Fault = _OK
        self._scripts: dict[str, _Script] = {}
        self._profiles: dict[str, tuple[ModelProfile, Callable[[], Fault]]] = {}

    # -- configuration ------------------------------------------------------------
    def script(
        self, model: str, faults: Iterable[Fault], *, then: Fault | None = None
    ) -> None:
        """Replace `model`'s script.

        Request #k gets `faults[k-1]`; after the list, `then` (or a normal reply).
        """
        if isinstance(faults, Fault):
            raise FaultSpecError("faults", "expected a list of faults: use [fault]")
        seq = list(faults)
        for i, fault in enumerate(seq):
            if not isinstance(fault, Fault):
                raise FaultSpecError(f"faults[{i}]", f"expected a Fault, got {fault!r}")
        if then is not None and not isinstance(then, Fault):
            raise FaultSpecError("then", f"expected a Fault or None, got {then!r}")
        with self._lock:
            self._scripts[model] = _Script(seq, then)

    def set_default(self, fault: Fault) -> None:
        """The fault for every model without a script or profile."""
        if not isinstance(fault, Fault):
            raise FaultSpecError("default", f"expected a Fault, got {fault!r}")
        with self._lock:
            self._default = fault

    def set_profile(self, model: str, profile: ModelProfile | None) -> None:
        """Give `model` random failures/latency (`None` removes the profile)."""
        with self._lock:
            if profile is None:
                self._profiles.pop(model, None)
            elif not isinstance(profile, ModelProfile):
                raise FaultSpecError(
                    "profile", f"expected a ModelProfile, got {profile!r}"
                )
            else:
                self._profiles[model] = (profile, profile.sampler())

    def reset(self) -> None:
        """Forget all scripts and profiles; the default goes back to `Fault.ok()`."""
        with self._lock:
            self._default = _OK
            self._scripts.clear()
            self._profiles.clear()

    # -- queries ------------------------------------------------------------------
    def configured_models(self) -> set[str]:
        """Models named by a script or a profile (served even if not listed)."""
        with self._lock:
            return set(self._scripts) | set(self._profiles)

    def is_configured(self, model: str) -> bool:
        """Whether `model` has a script or a profile."""
        with self._lock:
            return model in self._scripts or model in self._profiles

    def remaining(self, model: str) -> int:
        """How many scripted faults `model` has left before `then`/ok."""
        with self._lock:
            script = self._scripts.get(model)
            return 0 if script is None else len(script.faults) - script.position

    def next_fault(self, model: str) -> Fault:
        """Consume and return the fault for the next request to `model`."""
        with self._lock:
            script = self._scripts.get(model)
            if script is not None:
                if script.position < len(script.faults):
                    script.position += 1
                    return script.faults[script.position - 1]
                if script.then is not None:
                    return script.then
            profile = self._profiles.get(model)
            if profile is not None:
                return profile[1]()
            return _OK if script is not None else self._default

    # -- fault-script files -------------------------------------------------------
    def load(self, spec: Mapping[str, Any] | str | PathLike[str]) -> None:
        """Apply a fault script (a mapping, or a path to a JSON file).

        Format:
            ```json
            {"default": {"fault": "latency", "seconds": 0.05},
             "models": {"gpt-4.1": {"sequence": [{"fault": "status", "code": 503}],
                                    "then": {"fault": "ok"}}},
             "profiles": {"gemini-2.0-flash": {"failure_rate": 0.013,
                                               "p50_ms": 300, "p95_ms": 580}}}
            ```

        The whole file is validated before anything is applied.

        Raises:
            FaultSpecError: naming the field at fault (or the file, if unreadable).
        """
        data = _read(spec) if not isinstance(spec, Mapping) else spec
        default, scripts, profiles = parse_fault_spec(data)
        if default is not None:
            self.set_default(default)
        for model, (faults, then) in scripts.items():
            self.script(model, faults, then=then)
        for model, profile in profiles.items():
            self.set_profile(model, profile)


def _read(path: str | PathLike[str]) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultSpecError(
            str(path), f"cannot read the fault file ({exc.strerror})"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FaultSpecError(
            str(path),
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None


def parse_fault_spec(
    data: Any,
) -> tuple[
    Fault | None, dict[str, tuple[list[Fault], Fault | None]], dict[str, ModelProfile]
]:
    """Validate a fault-script document; return (default, scripts, profiles).

    Raises:
        FaultSpecError: naming the field at fault.
    """
    if not isinstance(data, Mapping):
        raise FaultSpecError("", "the fault script must be a JSON object")
    for key in data:
        if key not in ("default", "models", "profiles"):
            raise FaultSpecError(
                key, "unknown top-level field (fields: default, models, profiles)"
            )
    default = (
        Fault.from_dict(data["default"], where="default") if "default" in data else None
    )
    scripts: dict[str, tuple[list[Fault], Fault | None]] = {}
    models = data.get("models", {})
    if not isinstance(models, Mapping):
        raise FaultSpecError(
            "models", "expected an object mapping model ids to scripts"
        )
    for model, entry in models.items():
        where = f"models.{model}"
        if not isinstance(entry, Mapping):
            raise FaultSpecError(where, 'expected {"sequence": [...], "then": {...}}')
        for key in entry:
            if key not in ("sequence", "then"):
                raise FaultSpecError(
                    f"{where}.{key}", "unknown field (fields: sequence, then)"
                )
        raw_seq = entry.get("sequence", [])
        if not isinstance(raw_seq, list):
            raise FaultSpecError(f"{where}.sequence", "expected a list of faults")
        seq = [
            Fault.from_dict(f, where=f"{where}.sequence[{i}]")
            for i, f in enumerate(raw_seq)
        ]
        then = (
            Fault.from_dict(entry["then"], where=f"{where}.then")
            if entry.get("then")
            else None
        )
        scripts[str(model)] = (seq, then)
    profiles_raw = data.get("profiles", {})
    if not isinstance(profiles_raw, Mapping):
        raise FaultSpecError(
            "profiles", "expected an object mapping model ids to profiles"
        )
    profiles = {
        str(model): ModelProfile.from_dict(raw, where=f"profiles.{model}")
        for model, raw in profiles_raw.items()
    }
    return default, scripts, profiles
