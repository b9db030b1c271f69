"""A relay with no logic, on `holysheep serve`'s stack: the floor of a Python proxy.

uvicorn (uvloop, httptools) runs a raw ASGI app that forwards each
`POST /v1/chat/completions` body to one upstream with aiohttp and relays the
reply: a JSON reply as one response, a stream chunk by chunk as it arrives.
No keys, budgets, routes, limits, parsing or records: what any Python proxy on
this stack pays before doing anything. Benchmark code only.

    python _bare_relay.py --port N --upstream URL/v1 --key KEY
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import orjson
import uvicorn

_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream")]


def make_app(upstream: str, key: str, model: str) -> Any:
    url = upstream.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    state: dict[str, aiohttp.ClientSession] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] != "/v1/chat/completions":
            await send({"type": "http.response.start", "status": 200, "headers": _JSON})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        request["model"] = model
        session = state.get("s")
        if session is None:
            session = state["s"] = aiohttp.ClientSession()
        async with session.post(url, data=orjson.dumps(request), headers=headers) as r:
            if not request.get("stream"):
                raw = await r.read()
                length = (b"content-length", b"%d" % len(raw))
                start = {"type": "http.response.start", "status": r.status}
                await send({**start, "headers": [*_JSON, length]})
                await send({"type": "http.response.body", "body": raw})
                return
            await send(
                {"type": "http.response.start", "status": r.status, "headers": _SSE}
            )
            while chunk := await r.content.readany():
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--model", default="gpt-4.1")
    args = ap.parse_args()
    uvicorn.run(
        make_app(args.upstream, args.key, args.model),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
