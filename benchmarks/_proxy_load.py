"""The load generator of the proxy benchmark, in its own process (aiohttp).

Reads one JSON command per stdin line and answers with JSON lines on stdout:
zero or more `{"event": ...}` lines while it works (the parent samples the
servers' CPU and memory on them), then one `{"result": ...}` line. A target is
`{"url": ".../v1", "key": "...", "model": "..."}`.

    {"op": "latency", "targets": {name: target}, "iterations": N, "warmup": W}
        every iteration calls each target once non-streaming and once
        streaming, in a per-iteration shuffled order; answers ns samples
        (non-streaming totals, stream ttft and totals) per target.
    {"op": "throughput", "targets": {...}, "rounds": R, "calls": N,
     "concurrency": C, "warmup": W}
        each round: N non-streaming calls per target, C in flight, targets one
        after another in a shuffled order; events `begin`/`end` around each
        batch; answers requests/s per round per target.
    {"op": "streams", "target": target, "count": N, "concurrency": C,
     "every": K}
        N streamed calls, C in flight; a `progress` event every K completions.

End of input ends the process.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

import aiohttp
import orjson

PROMPT = [{"role": "user", "content": "Say hello in one sentence."}]
_clock = time.perf_counter_ns


class Target:
    """One server: its session (keep-alive pool) and its request bodies."""

    def __init__(self, spec: dict[str, Any], concurrency: int) -> None:
        self.url = spec["url"].rstrip("/") + "/chat/completions"
        self.headers = {
            "Authorization": f"Bearer {spec['key']}",
            "Content-Type": "application/json",
        }
        self.plain = orjson.dumps({"model": spec["model"], "messages": PROMPT})
        self.stream_body = orjson.dumps(
            {"model": spec["model"], "messages": PROMPT, "stream": True}
        )
        connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=None)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        )

    async def invoke(self) -> None:
        """One non-streaming call, its JSON read and parsed."""
        async with self.session.post(
            self.url, data=self.plain, headers=self.headers
        ) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
            if not orjson.loads(body).get("choices"):
                raise RuntimeError(f"no choices: {body[:200]!r}")

    async def stream(self) -> int:
        """One streamed call read to `[DONE]`; returns the first content's time."""
        ttft = 0
        done = False
        async with self.session.post(
            self.url, data=self.stream_body, headers=self.headers
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
            async for line in resp.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    done = True
                    continue
                if not ttft:
                    choices = orjson.loads(data).get("choices") or ()
                    if choices and (choices[0].get("delta") or {}).get("content"):
                        ttft = _clock()
        if not ttft or not done:
            raise RuntimeError("stream ended without content or without [DONE]")
        return ttft

    async def close(self) -> None:
        await self.session.close()


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _record(out: dict[str, Any], key: str, exc: BaseException) -> None:
    out["errors"] += 1
    out.setdefault("first_error", f"{key}: {type(exc).__name__}: {exc}"[:300])


async def latency(cmd: dict[str, Any]) -> dict[str, Any]:
    targets = {n: Target(s, 1) for n, s in cmd["targets"].items()}
    out = {n: {"invoke": [], "ttft": [], "stream": [], "errors": 0} for n in targets}
    try:
        for _ in range(cmd["warmup"]):
            for t in targets.values():
                await t.invoke()
                await t.stream()
        order = list(targets)
        rng = random.Random(cmd.get("seed", 1))
        for _ in range(cmd["iterations"]):
            rng.shuffle(order)
            for name in order:
                t, rec = targets[name], out[name]
                try:
                    t0 = _clock()
                    await t.invoke()
                    rec["invoke"].append(_clock() - t0)
                    t0 = _clock()
                    first = await t.stream()
                    rec["stream"].append(_clock() - t0)
                    rec["ttft"].append(first - t0)
                except Exception as exc:  # counted, reported in the table
                    _record(rec, name, exc)
    finally:
        for t in targets.values():
            await t.close()
    return out


async def batch(call: Any, n: int, concurrency: int) -> tuple[int, str | None]:
    """`n` calls of `call`, `concurrency` in flight; (errors, first error)."""
    remaining, errors = n, 0
    first: str | None = None

    async def worker() -> None:
        nonlocal remaining, errors, first
        while remaining > 0:
            remaining -= 1
            try:
                await call()
            except Exception as exc:
                errors += 1
                first = first or f"{type(exc).__name__}: {exc}"[:300]

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors, first


async def throughput(cmd: dict[str, Any]) -> dict[str, Any]:
    conc = cmd["concurrency"]
    targets = {n: Target(s, conc) for n, s in cmd["targets"].items()}
    out = {n: {"rates": [], "errors": 0} for n in targets}
    try:
        for t in targets.values():
            await batch(t.invoke, cmd["warmup"], conc)
        order = list(targets)
        rng = random.Random(cmd.get("seed", 2))
        for r in range(cmd["rounds"]):
            rng.shuffle(order)
            for name in order:
                emit({"event": "begin", "name": name, "round": r})
                t0 = time.perf_counter()
                errors, first = await batch(targets[name].invoke, cmd["calls"], conc)
                dt = time.perf_counter() - t0
                emit({"event": "end", "name": name, "round": r})
                rec = out[name]
                rec["rates"].append((cmd["calls"] - errors) / dt)
                rec["errors"] += errors
                if first:
                    rec.setdefault("first_error", first)
    finally:
        for t in targets.values():
            await t.close()
    return out


async def streams(cmd: dict[str, Any]) -> dict[str, Any]:
    conc, every = cmd["concurrency"], cmd["every"]
    target = Target(cmd["target"], conc)
    remaining, done, errors = cmd["count"], 0, 0
    first: str | None = None
    t0 = time.perf_counter()

    async def worker() -> None:
        nonlocal remaining, done, errors, first
        while remaining > 0:
            remaining -= 1
            try:
                await target.stream()
            except Exception as exc:
                errors += 1
                first = first or f"{type(exc).__name__}: {exc}"[:300]
            done += 1
            if done % every == 0:
                emit({"event": "progress", "done": done})

    try:
        await asyncio.gather(*(worker() for _ in range(conc)))
    finally:
        await target.close()
    return {
        "done": done,
        "errors": errors,
        "first_error": first,
        "seconds": time.perf_counter() - t0,
    }


OPS = {"latency": latency, "throughput": throughput, "streams": streams}


async def main() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        emit({"result": await OPS[cmd["op"]](cmd)})
    return 0


if __name__ == "__main__":
    try:
        from uvloop import run
    except ImportError:
        from asyncio import run
    raise SystemExit(run(main()))
