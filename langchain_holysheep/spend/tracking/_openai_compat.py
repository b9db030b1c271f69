"""The `get_openai_callback()` face of a spend handler: its counters and `str()`."""

from __future__ import annotations

from decimal import Decimal

from langchain_core.messages.ai import UsageMetadata

from langchain_holysheep.spend.tracking._summary import SpendReport
from langchain_holysheep.spend.tracking._tracker import SpendTracker

__all__ = ["OpenAICallbackCompat", "openai_style_summary"]


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _usd(amount: Decimal) -> str:
    """Every digit of an exact amount, in fixed notation (`$0.000244`, never `E`)."""
    return f"${amount.normalize():f}"


def openai_style_summary(report: SpendReport) -> str:
    """A report as `get_openai_callback()`'s handler prints itself.

    The cost line is the exact priced total; calls whose cost is unknown (an
    unpriced model, or an answer that reported no usage) are named after it,
    never folded in as $0.
    """
    cost = _usd(report.cost)
    if report.unpriced_calls:
        unknown = (
            f"unpriced ({_plural(report.unpriced_calls, 'call')}, "
            f"{_plural(report.unpriced_tokens, 'token')}: cost unknown"
        )
        cost = f"{cost} + {unknown}, not included)" if report.cost else f"{unknown})"
    return (
        f"Tokens Used: {report.input_tokens + report.output_tokens}\n"
        f"\tPrompt Tokens: {report.input_tokens}\n"
        f"\t\tPrompt Tokens Cached: {report.cached_tokens}\n"
        f"\tCompletion Tokens: {report.output_tokens}\n"
        f"\t\tReasoning Tokens: {report.reasoning_tokens}\n"
        f"Successful Requests: {report.successes}\n"
        f"Total Cost (USD): {cost}"
    )


class OpenAICallbackCompat:
    """What code written for `get_openai_callback()` reads, from a `SpendTracker`.

    Mixed into `HolySheepCallbackHandler`, so `get_holysheep_callback()` is a
    drop-in for langchain-community's `get_openai_callback()` (its
    `OpenAICallbackHandler`) and for langchain-core's
    `get_usage_metadata_callback()`: the same attribute names, the same counts,
    and a `str()` in the same format; prices come from the catalogue and your
    overrides (`PriceBook`), not from OpenAI's price table.

    Token counts are what the server billed: for every call that answered they
    equal `get_openai_callback()`'s; a call that failed after its usage was
    reported (a stream broken after its usage chunk) was billed too, and is
    counted here, where `get_openai_callback()` drops it. A fallback inside one
    `ChatHolySheep` call is one request, attributed to the model that answered.

    Attributes:
        prompt_tokens: billed prompt tokens (cached included).
        prompt_tokens_cached: of which read from the prompt cache.
        completion_tokens: billed completion tokens (reasoning included).
        reasoning_tokens: of which reasoning.
        total_tokens: prompt plus completion tokens.
        successful_requests: chat-model calls that returned an answer.
        total_cost: exact priced spend in USD, a `Decimal` (see `total_cost`).
        usage_metadata: the answers' `usage_metadata` summed per `model_name`,
            exactly as `get_usage_metadata_callback()` reports it.
    """

    tracker: SpendTracker

    @property
    def prompt_tokens(self) -> int:
        """Billed prompt tokens (cached included)."""
        return self.tracker.report().input_tokens

    @property
    def prompt_tokens_cached(self) -> int:
        """Prompt tokens read from the prompt cache."""
        return self.tracker.report().cached_tokens

    @property
    def completion_tokens(self) -> int:
        """Billed completion tokens (reasoning included)."""
        return self.tracker.report().output_tokens

    @property
    def reasoning_tokens(self) -> int:
        """Completion tokens spent on hidden reasoning."""
        return self.tracker.report().reasoning_tokens

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        report = self.tracker.report()
        return report.input_tokens + report.output_tokens

    @property
    def successful_requests(self) -> int:
        """Chat-model calls that returned an answer.

        Retries and fallbacks inside one call count once, as one request.
        """
        return self.tracker.report().successes

    @property
    def total_cost(self) -> Decimal:
        """Priced spend in USD, exact: a `Decimal` (`get_openai_callback()`: a float).

        What code written for the float does keeps working: comparisons with
        ints, floats and Decimals (`cb.total_cost > 0.5`), format specs
        (`f"{cb.total_cost:.4f}"`), `round()`, `float(cb.total_cost)`, and
        arithmetic with ints and Decimals. Arithmetic with a float raises
        `TypeError` (Decimal never mixes silently with binary floats): convert
        first, `spent += float(cb.total_cost)`.

        Calls whose cost is unknown (a model with no known price, or an answer
        that reported no usage) are not in this sum, and are never counted as
        $0: `str(cb)` names them after the total, and `cb.report()` counts them
        (`unpriced_calls`, `unpriced_tokens`). Check
        `cb.report().unpriced_calls == 0` before treating the total as complete.
        """
        return self.tracker.total_cost

    @property
    def usage_metadata(self) -> dict[str, UsageMetadata]:
        """The answers' `usage_metadata` summed per `response_metadata["model_name"]`.

        Read and added exactly as langchain-core's `get_usage_metadata_callback()`
        does (`add_usage`); a copy.
        """
        return self.tracker.usage_metadata

    def __str__(self) -> str:
        return openai_style_summary(self.tracker.report())

    def __copy__(self) -> OpenAICallbackCompat:
        # like OpenAICallbackHandler: a copied config keeps feeding this handler
        return self

    def __deepcopy__(self, memo: object) -> OpenAICallbackCompat:
        return self
