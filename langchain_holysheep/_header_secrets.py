"""No header value (the API key above all) in an exception or a log line.

h11 reports a header it cannot send as `Illegal header value b'Bearer ...'`;
httpcore, httpx and the OpenAI SDK chain that error under their own, and
httpcore's debug trace quotes it: `scrub_header_values` rewrites every such
error of a chain in place, and `redact_http_trace_logs` installs a filter on
the trace loggers.
"""

from __future__ import annotations

import logging
import re

import openai

__all__ = ["redact_http_trace_logs", "scrub_header_values"]

_HEADER_ERROR_MARKERS = (
    "illegal header",  # h11 (and httpcore / httpx wrapping it)
    "detected in headers",  # aiohttp
    "header injection",
    "invalid header value",
)
_REDACTED_HEADER_ERROR = (
    "Illegal header value (not shown: a header value may carry a credential)"
)
_REDACTED = "<redacted>"


def _exception_graph(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception reachable through causes, contexts and args."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or any(cur is s for s in seen):
            continue
        seen.append(cur)
        todo += [cur.__cause__, cur.__context__]
        todo += [a for a in cur.args if isinstance(a, BaseException)]
    return seen


def _safe_text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not hide the original error
        return ""


def _is_local_send_error(err: BaseException) -> bool:
    """An error raised on this side while sending (h11/httpx/aiohttp checks)."""
    if isinstance(err, openai.APIStatusError):
        return False
    return isinstance(err, ValueError) or "ProtocolError" in type(err).__name__


def scrub_header_values(exc: BaseException) -> bool:
    """Remove header values quoted by HTTP-client errors in `exc`'s chain.

    h11 reports a header it cannot send as `Illegal header value b'Bearer ...'`
    and httpcore / httpx / the OpenAI SDK chain that error under their own, so
    the value (often the API key) would reach tracebacks and logs. Each such
    error, and any `UnicodeEncodeError` (which holds the whole text it failed to
    encode), is rewritten in place.

    Returns:
        Whether the chain held a header error (the request was never sent).
    """
    found = False
    for err in _exception_graph(exc):
        if isinstance(err, UnicodeEncodeError):
            err.object = _REDACTED
            err.start, err.end = 0, len(_REDACTED)
            err.args = (err.encoding, _REDACTED, 0, len(_REDACTED), err.reason)
            found = True
            continue
        if not _is_local_send_error(err):
            continue  # e.g. a gateway reply that happens to mention headers
        text = _safe_text(err).lower()
        if any(marker in text for marker in _HEADER_ERROR_MARKERS):
            err.args = (_REDACTED_HEADER_ERROR,)
            for attr in ("message", "msg"):
                if isinstance(getattr(err, attr, None), str):
                    setattr(err, attr, _REDACTED_HEADER_ERROR)
            found = True
    return found


_ILLEGAL_HEADER = re.compile(r"Illegal header (value|name)\b.*", re.DOTALL)
_HTTP_TRACE_LOGGERS = tuple(
    f"{package}.{part}"
    for package in ("httpcore2", "httpcore")
    for part in ("http11", "http2", "connection", "proxy", "socks")
)


class _HeaderValueLogFilter(logging.Filter):
    """Redact the header value httpcore's debug trace quotes on a failed send."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Illegal header" in message:
            record.msg = _ILLEGAL_HEADER.sub(r"Illegal header \1 (not shown)", message)
            record.args = ()
        return True


_LOG_FILTER = _HeaderValueLogFilter()


def redact_http_trace_logs() -> None:
    """Install the header-value redaction on httpcore's trace loggers (idempotent)."""
    for name in _HTTP_TRACE_LOGGERS:
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)
