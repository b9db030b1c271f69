"""`AsyncStreamRouting`: the router's `astream` (mixed into `Router`).

The async twin of `stream_routing.StreamRouting`; see its docstring for the
live and buffered modes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from langchain_holysheep.resilience.call import CallState
from langchain_holysheep.resilience.errors import Action
from langchain_holysheep.resilience.events import aemit, pop_stream_scope
from langchain_holysheep.resilience.exceptions import (
    DeadlineExceededError,
    StreamInterruptedError,
)
from langchain_holysheep.resilience.routes import Route
from langchain_holysheep.resilience.stream_routing import (
    Opened,
    StreamRoutingBase,
    astreams,
    result_to_chunk,
)
from langchain_holysheep.resilience.streams import (
    AsyncSource,
    ReadTimeout,
    StreamWatch,
    final_chunk,
)

__all__ = ["AsyncStreamRouting"]


class AsyncStreamRouting(StreamRoutingBase):
    """The async streaming half of `Router` (a mixin; see `routing.Router`)."""

    async def _aread(
        self, source: AsyncSource, watch: StreamWatch
    ) -> ChatGenerationChunk | None:
        timeout, kind = watch.next_timeout()
        try:
            chunk = await source.next(timeout)
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

    async def _aopen(
        self,
        call: CallState,
        idx: int,
        route: Route,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        live: bool,
    ) -> Opened:
        attempt = call.admit(idx, route)
        try:
            await self.aacquire(route, call)
        except BaseException:
            attempt.release()
            raise
        call.begin(attempt)
        watch = self._watch(route, call, kwargs)
        kw = self.route_kwargs(route, call, kwargs, stream=True)
        model = route.model

        async def one_shot() -> AsyncIterator[ChatGenerationChunk]:
            yield result_to_chunk(await model._agenerate(messages, stop=stop, **kw))

        it = (
            model._astream(messages, stop=stop, run_manager=None, **kw)
            if astreams(model)
            else one_shot()
        )
        source = AsyncSource(it)
        prelude: list[ChatGenerationChunk] = []
        try:
            while not watch.complete:
                chunk = await self._aread(source, watch)
                if chunk is None:
                    break
                prelude.append(chunk)
                if live and watch.content:
                    return Opened(attempt, watch, prelude, source)
            err = watch.incomplete()
            if err is not None:
                raise err
        except BaseException as exc:
            await source.close()
            wrapped = watch.wrap(exc)
            call.attempt_failed(attempt, wrapped)
            if wrapped is exc:
                raise
            raise wrapped from exc
        await source.close()
        call.attempt_ok(attempt)
        return Opened(attempt, watch, prelude)

    async def astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        *,
        live: bool | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """One streamed call with failover (async); see the module docstring."""
        scope = pop_stream_scope(kwargs)
        rm = run_manager or (scope.async_run_manager if scope else None)
        live = scope is not None if live is None else live
        call = self.new_call(messages, kwargs, run_id=rm.run_id if rm else None)
        call.reporting = bool(rm is not None and rm.handlers)
        delivered: list[str] = []
        tool_calls = False
        broken: BaseException | None = None
        broken_model = ""
        opened: Opened | None = None
        last: ChatGenerationChunk | None = None

        async def before_sleep(rs: Any) -> None:
            call.on_retry(rs)
            await aemit(rm, call.events)

        try:
            while True:
                nxt = call.next_route(need_prefill=bool(delivered))
                await aemit(rm, call.events)
                if nxt is None:
                    if broken is not None:
                        raise StreamInterruptedError(
                            "".join(delivered), broken_model, broken, call.failures
                        ) from broken
                    raise call.final_error()
                idx, route = nxt
                msgs = (
                    self._continuation(messages, "".join(delivered))
                    if delivered
                    else messages
                )
                retrying = self.retry_policy(route).aretrying(
                    error_policy=self.error_policy,
                    deadline=call.deadline,
                    sleep=self._asleep,
                    before_sleep=before_sleep,
                    gateway=route.is_gateway,
                )
                try:
                    current: Opened = await retrying(
                        self._aopen, call, idx, route, msgs, stop, kwargs, live
                    )
                    opened = current
                except Exception as exc:
                    decision = call.route_failed(idx, route, exc)
                    await aemit(rm, call.events)
                    if decision.action is Action.STOP:
                        if broken is not None:
                            raise StreamInterruptedError(
                                "".join(delivered), route.name, exc, call.failures
                            ) from exc
                        if isinstance(exc, DeadlineExceededError):
                            raise call.all_failed() from exc
                        raise
                    continue
                await aemit(rm, call.events)
                base = len(delivered)
                for chunk in current.prelude:
                    last = chunk
                    yield chunk
                watch = current.watch
                if current.source is not None:
                    source = current.source
                    try:
                        while not watch.complete:
                            nxt_chunk = await self._aread(source, watch)
                            if nxt_chunk is None:
                                break
                            last = nxt_chunk
                            yield nxt_chunk
                        err = watch.incomplete()
                        if err is not None:
                            raise err
                    except Exception as exc:
                        await source.close()
                        wrapped = watch.wrap(exc)
                        call.attempt_failed(current.attempt, wrapped)
                        opened = None
                        delivered[base:] = watch.text
                        tool_calls = tool_calls or watch.tool_calls
                        broken, broken_model = wrapped, route.name
                        decision = call.route_failed(idx, route, wrapped)
                        await aemit(rm, call.events)
                        if decision.action is Action.STOP or tool_calls:
                            raise StreamInterruptedError(
                                "".join(delivered), route.name, wrapped, call.failures
                            ) from exc
                        call.continued_from.append(route.name)
                        continue
                    await source.close()
                    call.attempt_ok(current.attempt)
                opened = None
                await aemit(rm, call.events)
                yield final_chunk(last, call.metadata(idx, route))
                return
        finally:
            if opened is not None and opened.source is not None:
                await opened.source.close()
                opened.attempt.release()
            await aemit(rm, call.events)
