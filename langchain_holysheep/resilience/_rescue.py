"""`StreamRescue`: the state of a live stream that broke after its first content.

Once text has been delivered, a failure can only be rescued by a route that
continues it (assistant prefill): the delivered text is sent back as a trailing
assistant message and the new route's chunks follow on. Tool-call chunks and
structured content are never spliced. When nothing can continue,
`StreamInterruptedError` names the route where the stream broke, and lists the
routes that were asked to continue it and failed or refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_holysheep.resilience._exceptions import (
    RouteFailure,
    StreamInterruptedError,
)
from langchain_holysheep.resilience._streams import StreamWatch

__all__ = ["Continuation", "StreamRescue"]

Continuation = Callable[[Any, str], Any]
"""`(messages, delivered_text) -> messages` asking a route to continue the text."""


class StreamRescue:
    """Delivered text, where the stream broke, and the continuation attempts.

    Args:
        messages: the call's original messages.
        continuation: builds the messages of a continuation request.
    """

    __slots__ = (
        "_continuation",
        "_messages",
        "_trying",
        "broken",
        "broken_model",
        "continuation_errors",
        "delivered",
        "tool_calls",
    )

    def __init__(self, messages: Any, continuation: Continuation) -> None:
        self._messages = messages
        self._continuation = continuation
        self.delivered: list[str] = []
        self.tool_calls = False
        self.broken: BaseException | None = None
        self.broken_model = ""
        self.continuation_errors: list[tuple[str, BaseException]] = []
        self._trying = ""

    @property
    def active(self) -> bool:
        """Whether text was delivered: the next route must continue it."""
        return bool(self.delivered)

    def messages(self) -> Any:
        """The messages of the next attempt (a continuation once text was sent)."""
        if not self.delivered:
            return self._messages
        return self._continuation(self._messages, "".join(self.delivered))

    def broke(self, model: str, exc: BaseException, watch: StreamWatch) -> None:
        """The live stream of `model` failed after delivering `watch.text`."""
        if self.broken is None:
            self.broken, self.broken_model = exc, model
        self.delivered.extend(watch.text)
        self.tool_calls = self.tool_calls or watch.tool_calls

    def trying(self, model: str) -> None:
        """A route is about to be asked to continue the text."""
        self._trying = model

    def refused(self, exc: BaseException) -> None:
        """The route being tried could not continue the text."""
        if self.broken is not None and self._trying:
            self.continuation_errors.append((self._trying, exc))
            self._trying = ""

    def error(self, failures: Sequence[RouteFailure]) -> StreamInterruptedError:
        """The error that ends the call: where it broke, what was tried after."""
        err = StreamInterruptedError(
            "".join(self.delivered),
            self.broken_model,
            self.broken,
            failures,
            self.continuation_errors,
        )
        err.__cause__ = self.broken
        return err
