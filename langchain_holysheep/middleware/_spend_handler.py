"""The callback handler that prices and guards one agent model step."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, NoReturn
from uuid import UUID

from langchain_holysheep.middleware._spend_errors import SpendLimitExceededError
from langchain_holysheep.spend import (
    Budget,
    BudgetError,
    HolySheepCallbackHandler,
    PriceBook,
)
from langchain_holysheep.spend.budgets._errors import BudgetCheckError
from langchain_holysheep.spend.budgets._inflight import RESERVATIONS
from langchain_holysheep.spend.tracking._extract import requested_model_of

__all__ = ["HolySheepStepHandler", "StepRefusals"]


class HolySheepStepHandler(HolySheepCallbackHandler):
    """Prices and guards the model calls of one agent model step.

    On top of `HolySheepCallbackHandler`:

    - after a refusal by a limit, a further call in the step (a cheaper
      fallback model tried by a middleware inside) is admitted only if it is
      priced and its worst case fits what is left; an unpriced one gets the
      same refusal, before anything is sent. A call that cannot be checked
      (`BudgetCheckError`) ends the step for every further call;
    - it fails closed: a call whose worst case could not be reserved in every
      budget (the base handler only logs such problems) is refused with
      `BudgetCheckError` instead of being sent unchecked;
    - `answered` says whether a call of the step ended with an answer.

    The class name of the handler seen by LangChain contains "HolySheep" (the
    base class), so LangChain's duplicate log line for a refusal is silenced
    (`quiet_budget_refusals`).
    """

    def __init__(self, budgets: list[Budget], pricebook: PriceBook) -> None:
        super().__init__(budgets, pricebook=pricebook)
        self.refusal: BudgetError | None = None
        self.answered = False

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        """Reserve the call's worst case, or refuse it."""
        earlier = self.refusal
        if isinstance(earlier, BudgetCheckError):
            raise earlier
        try:
            super().on_chat_model_start(serialized, messages, run_id=run_id, **kwargs)
        except BudgetError as exc:
            if earlier is None:
                self.refusal = exc
                raise
            raise earlier from None
        except Exception as exc:
            self._fail_closed(run_id, kwargs, exc)
        missing = [b for b in self.budgets if not RESERVATIONS.has(run_id, b)]
        if missing:
            self._fail_closed(run_id, kwargs, None, missing[0])
        held = RESERVATIONS.held(run_id)
        if earlier is not None and any(r.amount == 0 for r in held):
            # unpriced: it cannot be shown to fit what the refusal left
            self.on_llm_error(earlier, run_id=run_id)
            raise earlier

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Price the answer and settle; the step has an answer."""
        super().on_llm_end(response, run_id=run_id, **kwargs)
        self.answered = True

    def _fail_closed(
        self,
        run_id: UUID,
        kwargs: dict[str, Any],
        cause: Exception | None,
        budget: Budget | None = None,
    ) -> NoReturn:
        # Ends the run in the base handler: what was reserved is released.
        self.on_llm_error(cause or RuntimeError("no reservation"), run_id=run_id)
        try:
            model: str | None = requested_model_of(
                kwargs.get("invocation_params") or {}, kwargs.get("metadata")
            )
        except Exception:
            model = None
        name = (budget or self.budgets[0]).name
        self.refusal = BudgetCheckError(name, model, cause)
        raise self.refusal from cause


class StepRefusals:
    """The refusals a middleware raised, by model step (its state object).

    A middleware outside it that catches the refusal and calls it again in the
    same step (`ModelFallbackMiddleware` trying another model) gets the same
    refusal. Each entry keeps its state object, so the key (its id) cannot be
    reused while the entry lives; the oldest entries are dropped past `size`.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[int, tuple[Any, SpendLimitExceededError]] = (
            OrderedDict()
        )

    def add(self, state: Any, err: SpendLimitExceededError) -> None:
        with self._lock:
            self._items[id(state)] = (state, err)
            self._items.move_to_end(id(state))
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def get(self, state: Any) -> SpendLimitExceededError | None:
        with self._lock:
            item = self._items.get(id(state))
        return item[1] if item is not None and item[0] is state else None
