"""`SpendLimitMiddleware`: per-run and per-thread budgets in money for agents."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain.agents.middleware.types import ExtendedModelResponse
from langchain_core.messages import AIMessage
from langgraph.types import Command

from langchain_holysheep.middleware._runconfig import (
    quiet_budget_refusals,
    scoped_config,
)
from langchain_holysheep.middleware._spend_caps import (
    Caps,
    new_run_key,
    resolve_caps_store,
    scopes_of,
    state_spend,
    thread_key,
)
from langchain_holysheep.middleware._spend_errors import (
    SpendLimitExceededError,
    SpendState,
)
from langchain_holysheep.middleware._spend_handler import (
    HolySheepStepHandler,
    StepRefusals,
)
from langchain_holysheep.middleware._validate import check_spend_limit_args
from langchain_holysheep.spend import (
    BudgetError,
    BudgetExceededError,
    PriceBook,
    UnpricedCallError,
)
from langchain_holysheep.spend.budgets._errors import (
    BudgetCheckError,
    BudgetStoreError,
)
from langchain_holysheep.spend.budgets._settings import check_lease
from langchain_holysheep.state import StateStore

__all__ = [
    "BudgetCheckError",
    "SpendLimitExceededError",
    "SpendLimitMiddleware",
    "SpendState",
]

_RUN_KEY = "holysheep_run_key"
_Step = tuple[Caps, int]


class _Call:
    """One model call of a step: what the model answered, then the step's result."""

    response: Any = None
    result: ExtendedModelResponse[Any]


class SpendLimitMiddleware(AgentMiddleware[SpendState, Any]):
    """Caps what an agent may spend, per run and per thread, in money.

    LangChain's `ModelCallLimitMiddleware` counts calls; this counts dollars.
    Each model call is priced at the price of the model that *answered* (the
    response's `model_name`, which may be a fallback), every attempt included,
    with `PriceBook` prices (cached and reasoning tokens too). Before each call
    reaches a model, its worst case (estimated prompt x input price +
    `max_tokens` x output price) must fit in what the run and the thread have
    left, so a limit is never overrun; set `max_tokens` on the model, or the
    catalogue's output limit is assumed. When a call does not fit, the run ends
    with a final AI message saying so (`exit_behavior="end"`) or raises
    `SpendLimitExceededError` (`"error"`).

    Each limit is a budget in a state store (`state=`, default
    `HOLYSHEEP_STATE_URL`, else one `memory://` store for the whole process),
    keyed by run and by thread (`agent-run/<run>`, `agent-thread/<thread_id>`):
    every call reserves its worst case there atomically before it is sent and
    settles to its real cost, so concurrent runs of one thread, in this
    process or in every process sharing a SQLite file or a Redis server,
    share one cap. A run without a `thread_id` is a thread of its own.

    The spend is also in the agent state: `thread_spend_usd` and
    `run_spend_usd` (`Decimal` USD, read back from the store after each call,
    so they include what concurrent runs of the thread spent) and
    `unpriced_model_calls`; each AI message also gets
    `response_metadata["holysheep_spend"]`. A thread whose checkpoint knows
    more spend than the store (a `memory://` store after a restart) has the
    difference counted in the store when a run starts. Calls to models with
    no known price pass (counted as unpriced), or are refused with
    `allow_unpriced=False`.

    When the whole chain of a `ChatHolySheep` with fallbacks does not fit what
    is left, its most expensive routes are dropped until the rest fits, and the
    call is served by the cheaper routes. After a refusal, a model that a
    middleware inside tries next (`ModelFallbackMiddleware`) is sent only if it
    is priced and its worst case fits; a call that nothing could answer ends
    the run, whatever middleware sits inside (a middleware that turns the
    refusal into an answer does not change that), and a middleware outside
    that calls the step again gets the same refusal (the refusal is a
    non-retryable LangChain `ModelError`). If the worst case of a call cannot
    be reserved (a price book that raises, a store that is down), the call is
    refused with `BudgetCheckError` (`BudgetStoreError`), whatever
    `exit_behavior` says: a limit is never left unchecked. A refusal by
    another budget (one given to `get_holysheep_callback`, or a run's
    `holysheep_budget`) passes through unchanged.

    Put it first in `middleware=[...]` (outermost) so it sees, and prices,
    every retry and fallback made by the middleware inside it.

    Args:
        run_limit: USD per run (one `invoke` / `stream`), or `None`.
        thread_limit: USD per thread (`configurable.thread_id`), or `None`.
        exit_behavior: `"end"` (final AI message) or `"error"` (raise).
        pricebook: the prices (default: catalogue + `HOLYSHEEP_PRICING_FILE`).
        allow_unpriced: let calls to unpriced models through (default `True`).
        state: where the limits are kept: a `StateStore` or a URL
            (`memory://`, `sqlite:///state.db`, `redis://host:6379/0`);
            default `HOLYSHEEP_STATE_URL`, else this process's memory.
        lease: seconds a call's reservation holds if its process dies.

    Raises:
        ConfigurationError: at construction, for an argument that cannot work
            (the message names it and says what to pass).

    Example:
        ```python
        from langchain.agents import create_agent
        from langchain_holysheep.middleware import SpendLimitMiddleware

        agent = create_agent(
            ChatHolySheep(model="gpt-4.1", max_tokens=512),
            tools=[search],
            middleware=[SpendLimitMiddleware(run_limit="0.05", thread_limit="1.00")],
            checkpointer=InMemorySaver(),
        )
        result = agent.invoke({"messages": [...]}, {"configurable": {"thread_id": "1"}})
        result["run_spend_usd"], result["thread_spend_usd"]
        ```
    """

    state_schema = SpendState  # type: ignore[assignment]

    def __init__(
        self,
        *,
        run_limit: Decimal | str | int | float | None = None,
        thread_limit: Decimal | str | int | float | None = None,
        exit_behavior: Literal["end", "error"] = "end",
        pricebook: PriceBook | None = None,
        allow_unpriced: bool = True,
        state: StateStore | str | None = None,
        lease: float = 300.0,
    ) -> None:
        super().__init__()
        self.run_limit, self.thread_limit = check_spend_limit_args(
            run_limit=run_limit,
            thread_limit=thread_limit,
            exit_behavior=exit_behavior,
            pricebook=pricebook,
            allow_unpriced=allow_unpriced,
        )
        self.exit_behavior: Literal["end", "error"] = exit_behavior
        self.pricebook = pricebook if pricebook is not None else PriceBook()
        self.allow_unpriced = allow_unpriced
        self.store = resolve_caps_store(state)
        self.lease = check_lease(lease)
        self._refusals = StepRefusals()
        quiet_budget_refusals()

    # -- the caps of a run ----------------------------------------------------------
    def _caps(self, state: Any) -> Caps:
        run_key = state.get(_RUN_KEY) or new_run_key()
        scopes = scopes_of(self.run_limit, self.thread_limit, run_key, thread_key())
        return Caps(
            self.store, scopes, strict=not self.allow_unpriced, lease=self.lease
        )

    def before_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Name the run in the store; count a checkpointed thread's spend in it."""
        update = {_RUN_KEY: new_run_key()}
        caps = self._caps({**state, **update})
        known = state_spend(state, "thread_spend_usd")
        for scope in caps.scopes:
            if scope.name == "thread" and known > 0:
                caps.adopt(scope, known)
        return update

    async def abefore_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Async version of `before_agent`."""
        return self.before_agent(state, runtime)

    def after_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Forget the run's own windows in the store (its spend is in the state)."""
        if state.get(_RUN_KEY):
            caps = self._caps(state)
            for scope in caps.scopes:
                if scope.name == "run" or scope.own_thread:
                    caps.forget(scope)
        return None

    async def aafter_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Async version of `after_agent`."""
        return self.after_agent(state, runtime)

    # -- bookkeeping ------------------------------------------------------------
    def _mirror(
        self, state: Any, caps: Caps, cost: Decimal, unpriced: int
    ) -> dict[str, Any]:
        """The state update: spend read back from the store, where it is kept.

        A scope without a limit is not in the store: its spend adds up in the
        state, as it does while the store cannot be read (the limits stay in
        the store, which refuses the next call until it is back).
        """
        try:
            spent = caps.spent()
        except BudgetStoreError:
            spent = {}
        return {
            "run_spend_usd": spent.get(
                "run", state_spend(state, "run_spend_usd") + cost
            ),
            "thread_spend_usd": spent.get(
                "thread", state_spend(state, "thread_spend_usd") + cost
            ),
            "unpriced_model_calls": unpriced,
        }

    def _refusal(
        self, exc: BudgetError, spend: HolySheepStepHandler, caps: Caps
    ) -> SpendLimitExceededError | None:
        """Our refusal of this model call, or `None` when another budget refused."""
        if exc is not spend.refusal or isinstance(exc, BudgetCheckError):
            return None
        if not isinstance(exc, (BudgetExceededError, UnpricedCallError)):
            return None
        scope = caps.scope(exc.budget)
        if scope is None:
            return None
        if isinstance(exc, UnpricedCallError):
            spent, _ = caps.usage(scope)
            return SpendLimitExceededError(
                scope.name, scope.limit, spent, str(exc), unpriced=exc.models
            )
        return SpendLimitExceededError(
            scope.name,
            scope.limit,
            exc.spent,
            str(exc),
            requested=exc.requested,
            model=exc.model,
            reserved=exc.reserved,
        )

    def _stop(
        self,
        request: ModelRequest[Any],
        err: SpendLimitExceededError,
        update: dict[str, Any],
    ) -> ExtendedModelResponse[Any]:
        if self.exit_behavior == "error":
            # An outer ModelFallbackMiddleware would retry this model call with
            # another model: the same step is refused again, with this error.
            self._refusals.add(request.state, err)
            raise err
        message = AIMessage(content=err.final_text())
        message.response_metadata["holysheep_spend"] = {
            "limit_reached": err.scope,
            **{k: str(v) for k, v in update.items() if k.endswith("_usd")},
        }
        return ExtendedModelResponse(
            model_response=ModelResponse(result=[message]),
            command=Command(update=update),
        )

    def _finish(
        self, response: Any, cost: Decimal, update: dict[str, Any]
    ) -> ExtendedModelResponse[Any]:
        model_response = (
            ModelResponse(result=[response])
            if isinstance(response, AIMessage)
            else response
        )
        for message in model_response.result:
            if isinstance(message, AIMessage):
                message.response_metadata["holysheep_spend"] = {
                    "cost_usd": str(cost),
                    "run_spend_usd": str(update["run_spend_usd"]),
                    "thread_spend_usd": str(update["thread_spend_usd"]),
                }
        return ExtendedModelResponse(
            model_response=model_response, command=Command(update=update)
        )

    # -- one model step -----------------------------------------------------------
    def _begin(self, request: ModelRequest[Any]) -> _Step | ExtendedModelResponse[Any]:
        """The step's caps and unpriced count, or the answer that ends it."""
        earlier = self._refusals.get(request.state)
        if earlier is not None:
            raise earlier
        state: Any = request.state
        caps = self._caps(state)
        unpriced = int(state.get("unpriced_model_calls") or 0)
        hit = caps.exhausted()
        if hit is None:
            return caps, unpriced
        scope, spent = hit
        update = self._mirror(state, caps, Decimal(0), unpriced)
        err = SpendLimitExceededError(scope.name, scope.limit, spent)
        return self._stop(request, err, update)

    def _end(
        self,
        request: ModelRequest[Any],
        spend: HolySheepStepHandler,
        step: _Step,
        response: Any,
        exc: BudgetError | None,
    ) -> ExtendedModelResponse[Any]:
        """Settle the step: its answer, or the end of the run after a refusal.

        A call that a limit refused and that no cheaper model answered ends
        the step, even when a middleware inside turned the refusal into an
        answer (`ModelRetryMiddleware`'s `on_failure="continue"`): the limit
        decides, not the error's wording.
        """
        caps, unpriced = step
        report = spend.report()
        update = self._mirror(
            request.state, caps, report.cost, unpriced + report.unpriced_calls
        )
        if exc is None and (spend.refusal is None or spend.answered):
            return self._finish(response, report.cost, update)
        refused = spend.refusal if spend.refusal is not None else exc
        assert refused is not None
        err = self._refusal(refused, spend, caps)
        if err is None:
            raise refused  # a budget check that failed, or another budget's refusal
        return self._stop(request, err, update)

    @contextmanager
    def _priced(self, request: ModelRequest[Any], step: _Step) -> Iterator[_Call]:
        """Price the model call made inside, then settle the step.

        The call inside sets `call.response`; a budget's refusal of it is
        caught here. `call.result` is then the step's response (`_end`).
        """
        caps, _ = step
        spend = HolySheepStepHandler(list(caps.budgets.values()), self.pricebook)
        call = _Call()
        refused: BudgetError | None = None
        try:
            with scoped_config(handlers=[spend]):
                yield call
        except BudgetError as exc:
            refused = exc
        call.result = self._end(request, spend, step, call.response, refused)

    # -- hooks ------------------------------------------------------------------
    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ExtendedModelResponse[Any]:
        """Price the model call and stop the run when a limit would be exceeded."""
        step = self._begin(request)
        if isinstance(step, ExtendedModelResponse):
            return step
        with self._priced(request, step) as call:
            call.response = handler(request)
        return call.result

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ExtendedModelResponse[Any]:
        """Async version of `wrap_model_call`."""
        step = self._begin(request)
        if isinstance(step, ExtendedModelResponse):
            return step
        with self._priced(request, step) as call:
            call.response = await handler(request)
        return call.result
