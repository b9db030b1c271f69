"""Fault types: what the simulator does to one request.

A `Fault` is an immutable description (kind plus parameters); the behaviour lives
in `delivery.py` and `streaming.py`. Faults can be built in code or from
JSON-style dicts (fault-script files, `script.py`), with errors that name the
field at fault (`checks.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from langchain_holysheep.simulator.checks import (
    FaultSpecError,
    check_choice,
    check_count,
    check_error_status,
    check_nonneg,
    check_positive,
    check_text,
)

__all__ = ["Fault", "FaultKind", "FaultSpecError"]

FaultKind = Literal[
    "ok",
    "latency",
    "status",
    "context_length_exceeded",
    "content_policy",
    "model_not_found",
    "slow_first_token",
    "silent",
    "reset",
    "stream_cut",
    "stream_stall",
    "malformed_chunk",
    "no_done",
    "bad_reply",
    "error_reply",
    "slow_drip",
    "empty_chunks",
]

#: Shapes of `bad_reply`: a 200 that is not a usable chat completion.
BadReplyShape = Literal["html", "no_choices", "null_choices", "empty_choices"]
BAD_REPLY_SHAPES: tuple[str, ...] = (
    "html",
    "no_choices",
    "null_choices",
    "empty_choices",
)

#: What `malformed_chunk` sends in place of the next chunk.
MalformedPayload = Literal["json", "html", "binary"]
MALFORMED_PAYLOADS: tuple[str, ...] = ("json", "html", "binary")

#: Kinds whose response is an HTTP error status with an OpenAI-shaped body.
ERROR_KINDS = frozenset(
    {"status", "context_length_exceeded", "content_policy", "model_not_found"}
)


POLICY_PREFIX = "Your request was rejected as a result of our safety system. "


@dataclass(frozen=True, slots=True)
class Fault:
    """What the simulator does with one chat-completions request.

    Build faults with the classmethods (`Fault.ok()`, `Fault.status(503)`, ...) or
    from a dict with `Fault.from_dict({"fault": "status", "code": 503})`.

    Attributes:
        kind: the fault's name (also recorded in the simulator log).
        delay: seconds to wait before the response headers.
        http_status: status code of an error response.
        retry_after: value of the `Retry-After` header (seconds), if any.
        retry_after_ms: value of the `retry-after-ms` header, if any.
        message: error message override.
        error_code: the body's `error.code` override.
        after_chunks: content chunks sent before a stream fault strikes.
        seconds: duration of a slow first token or a stall (`None`: forever).
        hang: for `no_done`, keep the connection open after the usage chunk.
        context_window: for `context_length_exceeded`, the limit to report
            (`None`: the model's catalogue context window).
        shape: for `bad_reply`, what the 200 body is (see `Fault.bad_reply`).
        payload: for `malformed_chunk`, what replaces the next chunk.
        interval: for `slow_drip`, seconds between two bytes; for
            `empty_chunks`, seconds between two empty chunks.
        error_type: for `error_reply`, the error object's `type` override.

    Example:
        ```python
        sim.script("gpt-4.1", [Fault.status(429, retry_after=1), Fault.ok()])
        sim.set_default(Fault.latency(0.05))
        Fault.from_dict({"fault": "stream_cut", "after_chunks": 3})
        ```
    """

    kind: FaultKind = "ok"
    delay: float = 0.0
    http_status: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    message: str | None = None
    error_code: str | None = None
    after_chunks: int = 0
    seconds: float | None = None
    hang: bool = False
    context_window: int | None = None
    shape: BadReplyShape | None = None
    payload: MalformedPayload | None = None
    interval: float | None = None
    error_type: str | None = None

    # -- constructors -------------------------------------------------------------
    @classmethod
    def ok(cls, latency: float = 0.0) -> Fault:
        """A normal reply, after `latency` seconds."""
        check_nonneg(latency, "latency")
        return cls("ok", delay=float(latency))

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """A normal reply whose headers are delayed by `seconds`."""
        check_nonneg(seconds, "seconds")
        return cls("latency", delay=float(seconds))

    @classmethod
    def status(
        cls,
        code: int,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        message: str | None = None,
        code_str: str | None = None,
    ) -> Fault:
        """An HTTP error with an OpenAI-shaped body.

        Args:
            code: the HTTP status (400-599), e.g. 408, 429, 500, 502, 503, 504.
            retry_after: sends `Retry-After: <seconds>`.
            retry_after_ms: sends `retry-after-ms: <ms>`.
            message: the body's `error.message` (a per-status default otherwise).
            code_str: the body's `error.code` (a per-status default otherwise).
        """
        check_error_status(code)
        check_nonneg(retry_after, "retry_after", allow_none=True)
        if retry_after_ms is not None:
            check_count(retry_after_ms, "retry_after_ms")
        return cls(
            "status",
            http_status=code,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            message=message,
            error_code=code_str,
        )

    @classmethod
    def context_length_exceeded(cls, context_window: int | None = None) -> Fault:
        """400 `context_length_exceeded`, worded like OpenAI's error."""
        if context_window is not None:
            check_count(context_window, "context_window")
        return cls(
            "context_length_exceeded",
            http_status=400,
            error_code="context_length_exceeded",
            context_window=context_window,
        )

    @classmethod
    def content_policy(
        cls, reason: str = "Your prompt was flagged by the content filter."
    ) -> Fault:
        """400 `content_policy_violation`; `reason` appears in the message."""
        return cls(
            "content_policy",
            http_status=400,
            error_code="content_policy_violation",
            message=f"{POLICY_PREFIX}{reason}",
        )

    @classmethod
    def model_not_found(cls) -> Fault:
        """404 `model_not_found`."""
        return cls("model_not_found", http_status=404, error_code="model_not_found")

    @classmethod
    def slow_first_token(cls, seconds: float) -> Fault:
        """Streams: headers and role chunk at once, first content after `seconds`.

        Non-streaming requests are delayed by `seconds` (like `latency`).
        """
        check_nonneg(seconds, "seconds")
        return cls("slow_first_token", seconds=float(seconds))

    @classmethod
    def silent(cls) -> Fault:
        """Read the request and never answer.

        The connection stays open until the client leaves or the server stops.
        """
        return cls("silent")

    @classmethod
    def reset(cls) -> Fault:
        """Abort the connection with a TCP reset, sending no response."""
        return cls("reset")

    @classmethod
    def stream_cut(cls, after_chunks: int = 1) -> Fault:
        """Send `after_chunks` content chunks, then close the connection mid-body.

        Non-streaming requests get a truncated JSON body, then the close.
        """
        check_count(after_chunks, "after_chunks")
        return cls("stream_cut", after_chunks=after_chunks)

    @classmethod
    def stream_stall(cls, after_chunks: int = 1, seconds: float | None = None) -> Fault:
        """Stall after `after_chunks` content chunks for `seconds` (`None`: forever).

        After a finite stall the stream completes normally.
        """
        check_count(after_chunks, "after_chunks")
        check_nonneg(seconds, "seconds", allow_none=True)
        return cls("stream_stall", after_chunks=after_chunks, seconds=seconds)

    @classmethod
    def malformed_chunk(
        cls, after_chunks: int = 1, payload: MalformedPayload = "json"
    ) -> Fault:
        """After `after_chunks` content chunks, send something unreadable; end the body.

        Args:
            after_chunks: content chunks sent first.
            payload: what replaces the next chunk:

                - `"json"`: an SSE event whose data is truncated JSON
                  (`data: {not json...`);
                - `"html"`: an HTML error page written into the body as is, with no
                  SSE framing (a proxy replacing the rest of the stream: SSE
                  readers skip its lines, so the stream just ends early);
                - `"binary"`: an SSE event whose data is not UTF-8.

        Non-streaming requests get half of the JSON body followed by the payload
        (truncated JSON for `"json"`), with status 200.
        """
        check_count(after_chunks, "after_chunks")
        check_choice(payload, "payload", MALFORMED_PAYLOADS)
        return cls("malformed_chunk", after_chunks=after_chunks, payload=payload)

    @classmethod
    def no_done(cls, hang: bool = False) -> Fault:
        """Full content and usage chunk but no `data: [DONE]`.

        Args:
            hang: keep the connection open afterwards without ending the body.
        """
        if not isinstance(hang, bool):
            raise FaultSpecError("hang", f"expected true or false, got {hang!r}")
        return cls("no_done", hang=hang)

    @classmethod
    def bad_reply(cls, shape: BadReplyShape = "html") -> Fault:
        """Status 200 with a body that is not a usable chat completion.

        Args:
            shape: what the body is:

                - `"html"`: a captive-portal HTML page, `Content-Type: text/html`
                  (stream requests get the same page instead of an event stream);
                - `"no_choices"`: a `chat.completion` object without `choices`;
                - `"null_choices"`: `"choices": null`;
                - `"empty_choices"`: `"choices": []`.

                For the JSON shapes, stream requests get an event stream whose
                every chunk has that shape (as many as a normal reply has, no
                content, no finish reason, no usage), then `data: [DONE]`.

        Never billed: no usage is sent.
        """
        check_choice(shape, "shape", BAD_REPLY_SHAPES)
        return cls("bad_reply", shape=shape)

    @classmethod
    def error_reply(
        cls,
        code: int = 500,
        message: str | None = None,
        code_str: str | None = None,
        error_type: str | None = None,
        after_chunks: int = 0,
    ) -> Fault:
        """Status 200 whose body is an OpenAI error object instead of a completion.

        The object is the one `Fault.status(code)` would send
        (`{"error": {"message", "type", "param", "code"}}`), but the HTTP status
        is 200, as some gateways and proxies answer.

        Args:
            code: the HTTP status the error stands for (selects the default
                message, type and code; e.g. 429 gives `rate_limit_exceeded`).
            message: the error's `message`.
            code_str: the error's `code`.
            error_type: the error's `type`.
            after_chunks: streams: content chunks sent before the error event
                (`data: {"error": ...}`), after which the body ends without
                `[DONE]`.
        """
        check_error_status(code)
        check_text(message, "message")
        check_text(code_str, "code_str")
        check_text(error_type, "error_type")
        check_count(after_chunks, "after_chunks")
        return cls(
            "error_reply",
            http_status=code,
            message=message,
            error_code=code_str,
            error_type=error_type,
            after_chunks=after_chunks,
        )

    @classmethod
    def slow_drip(cls, interval: float = 0.1) -> Fault:
        """A normal reply whose body is sent one byte every `interval` seconds.

        Headers (with the full `Content-Length` for non-streaming replies) go at
        once; every byte keeps a per-read timeout from firing, so only an overall
        limit ends the wait. Applies to streams too (the event stream drips).
        """
        check_positive(interval, "interval")
        return cls("slow_drip", interval=float(interval))

    @classmethod
    def empty_chunks(
        cls,
        after_chunks: int = 1,
        seconds: float | None = None,
        interval: float = 0.1,
    ) -> Fault:
        """Keep-alives without progress: empty chunks instead of the reply.

        Streams: after `after_chunks` content chunks (0: before any content),
        send a `"choices": []` chunk every `interval` seconds for `seconds`
        (`None`: until the client leaves), then the rest of the stream.

        Non-streaming requests: headers at once, then a space (JSON whitespace)
        every `interval` seconds for `seconds` (`None`: until the client leaves),
        then the JSON body.
        """
        check_count(after_chunks, "after_chunks")
        check_nonneg(seconds, "seconds", allow_none=True)
        check_positive(interval, "interval")
        return cls(
            "empty_chunks",
            after_chunks=after_chunks,
            seconds=seconds,
            interval=float(interval),
        )

    # -- helpers ------------------------------------------------------------------
    @property
    def is_error(self) -> bool:
        """Whether the fault answers with an HTTP error status."""
        return self.kind in ERROR_KINDS

    def with_delay(self, seconds: float) -> Fault:
        """A copy of this fault whose response headers wait `seconds` more."""
        check_nonneg(seconds, "seconds")
        return replace(self, delay=self.delay + seconds)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> Fault:
        """Build a fault from `{"fault": <kind>, **params}` (fault-script format).

        Args:
            data: e.g. `{"fault": "status", "code": 503, "retry_after": 1}`.
            where: field path used in error messages.

        Raises:
            FaultSpecError: naming the field at fault.
        """
        from langchain_holysheep.simulator.script import fault_from_dict

        return fault_from_dict(data, where=where)

    def to_dict(self) -> dict[str, Any]:
        """The fault-script form of this fault (inverse of `from_dict`)."""
        from langchain_holysheep.simulator.script import fault_to_dict

        return fault_to_dict(self)
