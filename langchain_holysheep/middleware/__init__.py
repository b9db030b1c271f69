"""LangChain 1.x agent middleware: money limits and resilience for `create_agent`.

Needs the optional extra: `pip install 'langchain-holysheep[agents]'`.

- `SpendLimitMiddleware`: per-run and per-thread budgets in USD, spend in the
  agent state, a graceful final message (or an error) when a limit is reached.
- `ResilienceMiddleware`: retry, circuit breakers, deadlines and fallbacks for
  agents on any chat model; streaming never shows a failed attempt's tokens.

Example:
    ```python
    from langchain.agents import create_agent
    from langchain_holysheep import ChatHolySheep
    from langchain_holysheep.middleware import (
        ResilienceMiddleware,
        SpendLimitMiddleware,
    )

    agent = create_agent(
        ChatHolySheep(model="gpt-4.1", max_tokens=512),
        tools=[get_weather],
        middleware=[
            SpendLimitMiddleware(run_limit="0.10"),
            ResilienceMiddleware("gemini-2.5-flash", "deepseek-v3.2", deadline=60),
        ],
    )
    ```
"""

try:
    import langchain.agents.middleware  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "langchain_holysheep.middleware needs LangChain's agents (langchain>=1.4): "
        "pip install 'langchain-holysheep[agents]'"
    ) from exc

from langchain_holysheep.middleware.resilience import (
    OnFailure,
    ResilienceMiddleware,
    StreamingMode,
)
from langchain_holysheep.middleware.spend import (
    SpendLimitExceededError,
    SpendLimitMiddleware,
    SpendState,
)

__all__ = [
    "OnFailure",
    "ResilienceMiddleware",
    "SpendLimitExceededError",
    "SpendLimitMiddleware",
    "SpendState",
    "StreamingMode",
]
