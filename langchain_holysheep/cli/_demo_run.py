"""What `holysheep demo` runs: a chain and a tool-using agent surviving an outage."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tools import tool

from langchain_holysheep.cli._output import Col, Output, numeric_cols
from langchain_holysheep.cli._target import Target, connect
from langchain_holysheep.cli.app import EXIT_FAILURE

__all__ = ["FALLBACKS", "PRIMARY", "run_demo"]

PRIMARY = "gpt-4.1"
FALLBACKS = ["gemini-2.5-flash", "deepseek-v3.2"]


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"31°C, humid, light wind in {city}"


@tool
def usd_to_vnd(amount: float) -> str:
    """Convert an amount of US dollars into Vietnamese dong."""
    return f"{amount:g} USD = {amount * 25_400:,.0f} VND"


class _Attempts(BaseCallbackHandler):
    """Collects the router's attempt events, to show what happened."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name in ("holysheep_attempt", "holysheep_fallback") and isinstance(
            data, dict
        ):
            self.events.append({"event": name, **data})

    def take(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events

    def by_call(self) -> list[list[dict[str, Any]]]:
        """The events split per model call (each ends with its successful attempt)."""
        calls: list[list[dict[str, Any]]] = [[]]
        for event in self.take():
            calls[-1].append(event)
            if event["event"] == "holysheep_attempt" and event["action"] == "success":
                calls.append([])
        return calls


def _model(target: Target) -> Any:
    from langchain_holysheep import ChatHolySheep
    from langchain_holysheep.resilience import BreakerRegistry, RetryPolicy

    retry = (
        RetryPolicy(max_attempts=2, initial=0.05, max_backoff=0.1)
        if target.simulated
        else RetryPolicy(max_attempts=3)
    )
    return ChatHolySheep(
        model=PRIMARY,
        fallbacks=FALLBACKS,
        retry=retry,
        breaker=BreakerRegistry(),
        max_tokens=512,
        temperature=0,
        deadline=60,
        **target.model_kwargs(),
    )


def _show_attempts(out: Output, events: list[dict[str, Any]]) -> None:
    for e in events:
        if e["event"] == "holysheep_attempt" and e.get("action") != "success":
            status = (
                f"HTTP {e['status']}" if e.get("status") else (e.get("error") or "")
            )
            out.line(f"    x {e['model']}: {status} -> {e['action']}", style="yellow")
        elif e["event"] == "holysheep_fallback" and e.get("next_model"):
            why = f" ({e['reason']})" if e.get("reason") else ""
            out.line(
                f"    > leaving {e['model']}{why}, falling back to {e['next_model']}",
                style="yellow",
            )


def _answered(out: Output, label: str, message: Any) -> str | None:
    meta = message.response_metadata.get("holysheep", {})
    served = meta.get("served_model") or message.response_metadata.get("model_name")
    extra = ""
    if meta.get("fallbacks"):
        extra = (
            f" after {meta['attempts'] - 1} failed attempt(s) on "
            f"{meta['requested_model']}"
        )
    out.line(f"    answered by {served}{extra}", style="green")
    text = message.text.strip()
    if text:
        out.line(f"  {label}: {text[:300]}")
    return served  # type: ignore[no-any-return]


def _run_chain(out: Output, llm: Any, config: Any, attempts: _Attempts) -> str | None:
    from langchain_core.prompts import ChatPromptTemplate

    out.heading("1. A chain: prompt | ChatHolySheep (with fallbacks)")
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a concise travel assistant."),
            ("human", "Suggest one thing to do in {city} in the evening."),
        ]
    )
    message = (prompt | llm).invoke({"city": "Hanoi"}, config=config)
    _show_attempts(out, attempts.take())
    return _answered(out, "answer", message)


def _run_agent(
    out: Output, llm: Any, config: Any, attempts: _Attempts, budget: Decimal
) -> list[str | None]:
    out.heading("2. A tool-using agent (create_agent + SpendLimitMiddleware)")
    try:
        from langchain.agents import create_agent

        from langchain_holysheep.middleware import SpendLimitMiddleware
    except ImportError:
        out.warn(
            "skipped: the agent needs LangChain's agents: "
            "pip install 'langchain-holysheep[agents]'"
        )
        return []
    agent = create_agent(
        llm,
        tools=[get_weather, usd_to_vnd],
        system_prompt="You help travellers. Use the tools.",
        middleware=[SpendLimitMiddleware(run_limit=budget)],
    )
    question = (
        "Planning an evening in Hanoi: check get_weather and usd_to_vnd for 500 USD."
    )
    out.line(f"  user: {question}")
    inputs: Any = {"messages": [("user", question)]}
    result = agent.invoke(inputs, config=config)
    served: list[str | None] = []
    per_call = attempts.by_call()
    for message in result["messages"][1:]:
        kind = type(message).__name__
        if kind == "AIMessage":
            _show_attempts(out, per_call.pop(0) if per_call else [])
        if kind == "AIMessage" and message.tool_calls:
            calls = ", ".join(
                f"{c['name']}({', '.join(f'{k}={v!r}' for k, v in c['args'].items())})"
                for c in message.tool_calls
            )
            model = message.response_metadata.get("holysheep", {}).get("served_model")
            out.line(f"  {model} -> tools: {calls}")
            served.append(model)
        elif kind == "ToolMessage":
            out.line(f"  tool {message.name}: {message.text}")
        elif kind == "AIMessage":
            served.append(_answered(out, "agent", message))
    out.line(
        f"  agent run spend: ${result.get('run_spend_usd', Decimal(0)):.6f} "
        f"(limit ${budget})"
    )
    return served


def _spend_table(out: Output, report: Any, sim: Any) -> None:
    out.heading("3. Spend")
    rows = [
        _spend_row(m.model, m.requests, m.successes, m.failures, m)
        for m in report.models
    ]
    ok = report.attempts - report.failed_attempts
    rows.append(
        _spend_row("TOTAL", report.attempts, ok, report.failed_attempts, report)
    )
    out.table(
        [
            Col("model"),
            *numeric_cols(
                "requests", "ok", "failed", "fallback", "in tok", "out tok", "cost"
            ),
        ],
        rows,
        title="Spend by model (priced by the model that answered)",
    )
    if sim is not None:
        billed = sim.log.billed()
        tracked = report.input_tokens + report.output_tokens
        agree = "matches" if tracked == billed.total_tokens else "DIFFERS FROM"
        out.line(
            f"simulator billed {billed.requests} requests, {billed.total_tokens:,} "
            f"tokens: the tracker {agree} it ({tracked:,} tokens)."
        )


def _spend_row(
    label: str, requests: int, ok: int, failed: int, counts: Any
) -> list[Any]:
    """One table row; `counts` is a `ModelSpend` or the whole `SpendReport`."""
    from langchain_holysheep.spend import format_money

    return [
        label,
        requests,
        ok,
        failed,
        counts.fallbacks,
        f"{counts.input_tokens:,}",
        f"{counts.output_tokens:,}",
        format_money(counts.cost, places=6),
    ]


def run_demo(
    simulate: bool | None, outage: bool, cap: Decimal, ledger: Path | None
) -> None:
    """Run the chain and the agent on the target, then show spend and the result."""
    from langchain_holysheep.spend import Budget, get_holysheep_callback

    out = Output()
    with connect(simulate=simulate) as target:
        out.line(f"HolySheep demo on the {target.label}", style="bold")
        out.line(f"fallback chain: {' -> '.join([PRIMARY, *FALLBACKS])}")
        _script_outage(out, target, outage)
        attempts = _Attempts()
        config: Any = {"callbacks": [attempts], "tags": ["holysheep-demo"]}
        llm = _model(target)
        spend_cap = Budget(cap, window="total", name="demo", store="memory://")
        with get_holysheep_callback(
            budget=spend_cap, ledger=str(ledger) if ledger else None
        ) as cb:
            served = [_run_chain(out, llm, config, attempts)]
            served += _run_agent(out, llm, config, attempts, cap)
        report = cb.report()
        _spend_table(out, report, target.sim)
        _result(out, report, served)
        out.line(
            f"spent {cb.total_cost:.6f} USD of the {cap} USD cap; calls that would "
            "not fit are refused before they are sent."
        )
        if ledger:
            out.line(f"recorded in {ledger}: holysheep report --ledger {ledger}")


def _script_outage(out: Output, target: Target, outage: bool) -> None:
    """On the simulator, take the primary model down (if asked)."""
    if target.simulated and outage:
        from langchain_holysheep.simulator import Fault

        target.sim.script(PRIMARY, [], then=Fault.status(503))
        out.line(
            f"scripted outage: {PRIMARY} answers HTTP 503 to every request",
            style="yellow",
        )
    elif not target.simulated:
        out.note("real gateway: no outage is injected (use --sim to see one)")


def _result(out: Output, report: Any, served: list[str | None]) -> None:
    """Say whether every call was answered (exit 1 if any failed)."""
    out.heading("Result")
    failed_primary = sum(m.failures for m in report.models if m.model == PRIMARY)
    if report.failures:
        out.error(f"{report.failures} call(s) failed")
        raise typer.Exit(EXIT_FAILURE)
    answered = ", ".join(sorted({s for s in served if s}))
    if failed_primary:
        out.line(
            f"outage survived: {failed_primary} failed attempt(s) on {PRIMARY}; "
            f"all {report.calls} calls answered (by {answered}).",
            style="bold green",
        )
    else:
        out.line(f"all {report.calls} calls answered (by {answered}).")
