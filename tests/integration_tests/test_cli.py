"""The `holysheep` command: in-process with typer's CliRunner, and as a real
console script (subprocess) where signals, pipes and imports matter."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.cli import app
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import get_holysheep_callback
from langchain_holysheep.spend.ledger import SQLiteLedger
from langchain_holysheep.spend.records import CallRecord, TokenUsage

ANSI = re.compile(r"\x1b\[")
BOX = re.compile("[\u2500-\u257f]")
HOLYSHEEP = str(Path(sys.executable).with_name("holysheep"))
COMMANDS = ["demo", "models", "ping", "report", "sim", "batch"]


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    base = {"HOLYSHEEP_API_KEY": "", "HOLYSHEEP_BASE_URL": "", "HOLYSHEEP_DEBUG": ""}
    return CliRunner().invoke(app, list(args), env={**base, **(env or {})})


def sim_env(sim: GatewaySimulator) -> dict[str, str]:
    return {"HOLYSHEEP_API_KEY": sim.api_key, "HOLYSHEEP_BASE_URL": sim.base_url}


def plain(text: str) -> None:
    assert not ANSI.search(text), "ANSI escape codes in piped output"
    assert not BOX.search(text), "box-drawing characters in piped output"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLYSHEEP_")}
    return {**env, "PYTHONIOENCODING": "utf-8", **extra}


# -- help, usage errors --------------------------------------------------------
@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_on_everything(command: str | None) -> None:
    result = cli(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    plain(result.output)


def test_usage_errors_exit_2() -> None:
    assert cli("no-such-command").exit_code == 2
    assert cli("models", "--format", "xml").exit_code == 2
    bad_model = cli("ping", "--sim", "-m", "gpt4.1")
    assert bad_model.exit_code == 2
    assert "Did you mean 'gpt-4.1'?" in bad_model.stderr


def write_failing_chain(directory: Path) -> None:
    (directory / "failing_chain.py").write_text(
        "def make(model):\n    raise RuntimeError('the chain factory broke')\n"
    )


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off", "maybe"])
def test_debug_off_values_keep_the_one_line_error(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_failing_chain(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    args = ["batch", "in.jsonl", "-o", "out.jsonl", "--chain", "failing_chain:make"]
    result = cli(*args, "--sim", env={"HOLYSHEEP_DEBUG": value})
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # handled, no traceback
    assert "error: RuntimeError: the chain factory broke" in result.stderr
    assert "set HOLYSHEEP_DEBUG=1 to see the traceback" in result.stderr


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_debug_on_values_show_the_traceback(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_failing_chain(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    args = ["batch", "in.jsonl", "-o", "out.jsonl", "--chain", "failing_chain:make"]
    result = cli(*args, "--sim", env={"HOLYSHEEP_DEBUG": value})
    assert isinstance(result.exception, RuntimeError)  # re-raised for the traceback
    assert "error:" not in result.stderr


# -- models --------------------------------------------------------------------
def test_models_catalogue_plain_table_and_json() -> None:
    table = cli("models")
    assert table.exit_code == 0, table.output
    plain(table.stdout)
    line = next(x for x in table.stdout.splitlines() if x.startswith("gpt-4.1 "))
    assert line.split()[-3:] == ["1,047,576", "8.00", "24.00"]
    gpt4o = next(x for x in table.stdout.splitlines() if x.startswith("gpt-4o "))
    assert gpt4o.split()[-2:] == ["unpriced", "unpriced"]

    rows = {r["model"]: r for r in json.loads(cli("models", "-f", "json").stdout)}
    assert rows["deepseek-v3.2"]["input_per_1m"] == "0.42"
    assert rows["gpt-4o"]["input_per_1m"] is None  # unpriced, never 0
    assert rows["claude-sonnet-4.5"]["context_window"] == 200000
    assert cli("models", "-f", "csv").stdout.startswith("model,provider,aliases")


def test_models_merges_the_live_list(sim: GatewaySimulator) -> None:
    sim.script("brand-new-model", [])  # served, but not in the catalogue
    result = cli("models", env=sim_env(sim))
    assert result.exit_code == 0, result.output
    new = next(x for x in result.stdout.splitlines() if x.startswith("brand-new"))
    assert "unpriced" in new and "yes (not in catalogue)" in new
    assert "served" in result.stdout.splitlines()[1]

    bad = cli("models", "--live", env={**sim_env(sim), "HOLYSHEEP_API_KEY": "hs-x"})
    assert bad.exit_code == 1
    assert "rejected the API key" in bad.stderr


# -- ping ----------------------------------------------------------------------
def test_ping_reports_percentiles_and_errors(sim: GatewaySimulator) -> None:
    sim.script("deepseek-v3.2", [Fault.ok(), Fault.status(503)])  # after warm-up
    result = cli(
        "ping", "-n", "4", "-m", "gpt-4.1", "-m", "deepseek-v3.2", env=sim_env(sim)
    )
    assert result.exit_code == 0, result.output
    plain(result.stdout)
    rows = {x.split()[0]: x.split() for x in result.stdout.splitlines()[2:]}
    assert rows["gpt-4.1"][1] == "4"
    assert rows["deepseek-v3.2"][1:3] == ["3", "1"]  # 3 ok, 1 error
    assert "p50 ms" in result.stdout and "p95 ms" in result.stdout
    # warm-up requests are not counted; retries are off: one request per ping
    assert sim.log.count("gpt-4.1") == 5


# -- demo ----------------------------------------------------------------------
def test_demo_survives_the_outage_and_reports_spend(tmp_path: Path) -> None:
    ledger = tmp_path / "demo.sqlite3"
    result = cli("demo", "--ledger", str(ledger))
    assert result.exit_code == 0, result.output
    out = result.stdout
    plain(out)
    assert "scripted outage: gpt-4.1 answers HTTP 503" in out
    assert "answered by gemini-2.5-flash after" in out
    assert "-> tools: get_weather(city='Hanoi'), usd_to_vnd(amount=500)" in out
    assert "Spend by model (priced by the model that answered)" in out
    assert "the tracker matches it" in out
    assert re.search(r"outage survived: \d+ failed attempt\(s\) on gpt-4.1", out)
    # ... and the ledger it wrote reports the same calls
    report = cli("report", "--ledger", str(ledger), "--by", "model")
    assert report.exit_code == 0, report.output
    assert "gemini-2.5-flash" in report.stdout and "gpt-4.1" in report.stdout


def test_demo_budget_exceeded_exit_code() -> None:
    result = cli("demo", "--budget", "0.001")
    assert result.exit_code == 3
    assert "Budget 'demo' exceeded" in result.stderr


# -- report --------------------------------------------------------------------
@pytest.fixture
def ledger(tmp_path: Path, shared_sim: GatewaySimulator) -> Path:
    path = tmp_path / "ledger.sqlite3"
    with get_holysheep_callback(ledger=str(path)):
        for model, tag in [("gpt-4.1", "team:a"), ("deepseek-v3.2", "team:b")]:
            ChatHolySheep(
                model=model, base_url=shared_sim.base_url, api_key=shared_sim.api_key
            ).invoke("hello", config={"tags": [tag]})
    return path


def test_report_by_day_model_tag_and_formats(ledger: Path) -> None:
    by_day = cli("report", "--ledger", str(ledger))
    assert by_day.exit_code == 0, by_day.output
    plain(by_day.stdout)
    assert "HolySheep spend by day (UTC)" in by_day.stdout

    by_model = json.loads(
        cli("report", "--ledger", str(ledger), "-b", "model", "-f", "json").stdout
    )
    models = {row["model"]: row for row in by_model["rows"]}
    assert set(models) == {"gpt-4.1", "deepseek-v3.2"}
    assert models["gpt-4.1"]["requests"] == 1

    csv = cli("report", "--ledger", str(ledger), "--by", "tag", "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("tag,requests,")
    assert {line.split(",")[0] for line in csv.stdout.splitlines()[1:]} == {
        "team:a",
        "team:b",
    }
    since = cli("report", "--ledger", str(ledger), "--since", "1h", "-f", "json")
    assert json.loads(since.stdout)["total"]["requests"] == 2


def test_report_by_tag_leaves_out_langchain_internal_tags(
    tmp_path: Path, shared_sim: GatewaySimulator
) -> None:
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableParallel

    path = tmp_path / "ledger.sqlite3"
    model = ChatHolySheep(
        model="gpt-4.1", base_url=shared_sim.base_url, api_key=shared_sim.api_key
    )
    chain = ChatPromptTemplate.from_template("Say {word}") | model  # seq:step:2
    both = RunnableParallel(a=model, b=model)  # map:key:a, map:key:b
    with get_holysheep_callback(ledger=str(path)):
        chain.invoke({"word": "hi"}, config={"tags": ["team:a"]})
        both.invoke("hi")
    rows = json.loads(
        cli("report", "--ledger", str(path), "--by", "tag", "-f", "json").stdout
    )["rows"]
    assert {row["tag"]: row["requests"] for row in rows} == {"team:a": 1, None: 2}
    with sqlite3.connect(path) as conn:  # not stored either
        stored = {t for (t,) in conn.execute("SELECT tag FROM call_tags")}
        assert stored == {"team:a"}
        arrays = [json.loads(t) for (t,) in conn.execute("SELECT tags FROM calls")]
        assert sorted(map(tuple, arrays)) == [(), (), ("team:a",)]
        # a ledger written before the filter: its internal tags are skipped too
        call_id = conn.execute("SELECT min(id) FROM calls").fetchone()[0]
        conn.executemany(
            "INSERT INTO call_tags (call_id, tag) VALUES (?, ?)",
            [(call_id, t) for t in ("seq:step:2", "graph:step:3", "langsmith:hidden")],
        )
    rows = json.loads(
        cli("report", "--ledger", str(path), "--by", "tag", "-f", "json").stdout
    )["rows"]
    assert {row["tag"] for row in rows} == {"team:a", None}


def test_report_until_a_day_includes_that_whole_day(ledger: Path) -> None:
    with sqlite3.connect(ledger) as conn:
        first, last = conn.execute("SELECT min(ts), max(ts) FROM calls").fetchone()
    day = datetime.fromtimestamp(first, tz=timezone.utc).date()
    assert datetime.fromtimestamp(last, tz=timezone.utc).date() == day

    def requests(*window: str) -> int:
        result = cli("report", "--ledger", str(ledger), "-f", "json", *window)
        assert result.exit_code == 0, result.output
        return int(json.loads(result.stdout)["total"]["requests"])

    assert requests("--until", "today") == 2  # recorded today: included
    assert requests("--until", day.isoformat()) == 2
    assert requests("--since", day.isoformat(), "--until", day.isoformat()) == 2
    assert requests("--until", (day - timedelta(days=1)).isoformat()) == 0
    assert requests("--since", (day + timedelta(days=1)).isoformat()) == 0
    assert requests("--until", "1h") == 0  # a span: before that instant
    help_text = cli("report", "--help").stdout
    assert "included whole" in " ".join(help_text.split())
    backwards = cli(
        "report", "--ledger", str(ledger), "--since", "today", "--until", "yesterday"
    )
    assert backwards.exit_code == 2
    assert "is not before --until" in backwards.stderr


def test_report_errors(tmp_path: Path, ledger: Path) -> None:
    missing = cli("report", "--ledger", str(tmp_path / "none.sqlite3"))
    assert missing.exit_code == 1
    assert "no ledger at" in missing.stderr
    assert cli("report", "--ledger", str(ledger), "--by", "colour").exit_code == 2
    assert cli("report", "--ledger", str(ledger), "--since", "soon").exit_code == 2


# -- batch ---------------------------------------------------------------------
def write_items(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"doc-{i}", "text": f"document {i}"}) + "\n")


def result_ids(path: Path) -> list[str]:
    return [json.loads(x)["id"] for x in path.read_text().splitlines()]


def test_batch_resumes_after_ctrl_c_without_loss_or_repeats(
    tmp_path: Path, sim: GatewaySimulator
) -> None:
    sim.set_default(Fault.latency(0.05))
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_items(items, 40)
    args = [HOLYSHEEP, "batch", str(items), "-o", str(out), "-p", "Summarise: {text}"]
    env = subprocess_env(**sim_env(sim))
    proc = subprocess.Popen(
        [*args, "-c", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and len(out.read_text().splitlines()) >= 6:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    first = result_ids(out)
    assert 6 <= len(first) < 40
    assert len(set(first)) == len(first)

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(first)} already done, {40 - len(first)} to run" in rerun.stderr
    ids = result_ids(out)
    assert sorted(ids) == sorted(f"doc-{i}" for i in range(40))  # none lost
    assert len(ids) == len(set(ids))  # none repeated
    plain(rerun.stdout)
    assert "job total: 40 results" in rerun.stdout
    # Only the items in flight at Ctrl-C were sent twice.
    assert 40 <= sim.log.count() <= 40 + 3


def test_batch_repairs_a_torn_line_limits_and_retries_errors(
    tmp_path: Path, sim: GatewaySimulator
) -> None:
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_items(items, 6)
    env = sim_env(sim)
    base = ["batch", str(items), "-o", str(out), "-p", "Summarise: {text}"]
    sim.script("gpt-4.1", [Fault.status(400, message="bad request")])
    first = cli(*base, "--limit", "3", "-c", "1", env=env)
    assert first.exit_code == 1, first.output  # one item failed
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["status"] for r in records] == ["error", "ok", "ok"]
    assert records[1]["model"] == "gpt-4.1" and records[1]["cost"] != "0"

    with out.open("ab") as f:  # a crash in the middle of writing a result
        f.write(b'{"id":"doc-3","line":4,"status":"o')
    second = cli(*base, env=env)
    assert second.exit_code == 1, second.output  # doc-0 is still an error
    assert "torn by an earlier crash" in second.stderr
    assert "--retry-errors" in second.stderr
    assert sorted(result_ids(out)) == sorted(f"doc-{i}" for i in range(6))

    third = cli(*base, "--retry-errors", env=env)
    assert third.exit_code == 0, third.output
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(records) == 6 and all(r["status"] == "ok" for r in records)
    assert "nothing to do" in cli(*base, env=env).stdout


def test_batch_with_every_item_failed_exits_1_and_names_retry_errors(
    tmp_path: Path, sim: GatewaySimulator
) -> None:
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_items(items, 12)
    env = sim_env(sim)
    args = ["batch", str(items), "-o", str(out), "-p", "{text}", "-c", "4"]
    sim.set_default(Fault.status(400, message="the upstream refused it"))
    first = cli(*args, env=env)
    assert first.exit_code == 1, first.output
    assert "this run: 0 ok, 12 failed" in first.stdout
    assert "12 items failed" in first.stderr
    assert "the upstream refused it" in first.stderr  # the first reason, shown
    assert "--retry-errors" in first.stderr

    rerun = cli(*args, env=env)
    assert rerun.exit_code == 1, rerun.output
    assert "nothing to do" not in rerun.stdout
    assert "12 of them failed" in rerun.stdout
    assert "--retry-errors" in rerun.stderr
    assert sim.log.count() == 12  # the rerun sent nothing

    sim.set_default(Fault.ok())
    retried = cli(*args, "--retry-errors", env=env)
    assert retried.exit_code == 0, retried.output
    assert "this run: 12 ok, 0 failed" in retried.stdout
    done = cli(*args, env=env)
    assert done.exit_code == 0 and "nothing to do" in done.stdout


def test_batch_keeps_the_whole_error_reason(
    tmp_path: Path, sim: GatewaySimulator
) -> None:
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with items.open("w", encoding="utf-8") as f:  # ~150k tokens: over both windows
        f.write(json.dumps({"id": "huge", "text": "word " * 150_000}) + "\n")
        f.write(json.dumps({"id": "small", "text": "hello"}) + "\n")
    args = ["batch", str(items), "-o", str(out), "-p", "{text}"]
    result = cli(
        *args, "-m", "gpt-4o", "--fallback", "moonshot-v1-8k", env=sim_env(sim)
    )
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["small"]["status"] == "ok"
    error = records["huge"]["error"]
    assert error.startswith("AllRoutesFailedError: All routes failed")
    # every route's reason is kept, not just the first line of the message
    assert "gpt-4o" in error and "moonshot-v1-8k" in error
    assert error.count("context window") == 2
    assert sim.log.count() == 1  # the huge item was never sent
    assert result.exit_code == 1, result.output


def test_batch_without_a_key_runs_on_the_simulator(tmp_path: Path) -> None:
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_items(items, 3)
    result = cli("batch", str(items), "-o", str(out), "-p", "Summarise: {text}")
    assert result.exit_code == 0, result.output
    assert "HOLYSHEEP_API_KEY is not set: running on the embedded simulator" in (
        result.stderr
    )
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok"] * 3
    assert all(r["simulated"] is True for r in records)
    assert all("simulated reply" in r["output"] for r in records)
    rehearsal = cli("batch", str(items), "-o", str(tmp_path / "o2.jsonl"), "--sim")
    assert rehearsal.exit_code == 2  # {prompt} is not a field: a usage error
    assert "warning" not in rehearsal.stderr  # --sim asked for the simulator
    live = cli("batch", str(items), "-o", str(tmp_path / "o3.jsonl"), "--live")
    assert live.exit_code == 1 and "HOLYSHEEP_API_KEY" in live.stderr
    assert not (tmp_path / "o2.jsonl").exists()
    assert not (tmp_path / "o3.jsonl").exists()


def test_batch_warns_when_simulated_results_meet_the_gateway(
    tmp_path: Path, sim: GatewaySimulator
) -> None:
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_items(items, 4)
    args = ["batch", str(items), "-o", str(out), "-p", "{text}"]
    assert cli(*args, "--sim", "--limit", "2").exit_code == 0
    live = cli(*args, env=sim_env(sim))  # a key is set: "the gateway"
    assert live.exit_code == 0, live.output
    assert "2 results in" in live.stderr and "came from the embedded" in live.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r.get("simulated", False) for r in records] == [True, True, False, False]


def test_batch_budget_cap_stops_with_exit_3(
    tmp_path: Path, sim: GatewaySimulator
) -> None:
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_items(items, 10)
    # worst case per call on gpt-4.1 with --max-tokens 100: ~$0.0094 (3 attempts);
    # each call costs ~$0.001
    args = ["batch", str(items), "-o", str(out), "-p", "{text}", "--max-tokens", "100"]
    result = cli(*args, "--budget", "0.015", "-c", "4", env=sim_env(sim))
    assert result.exit_code == 3, result.output
    assert "budget reached" in result.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert 0 < len(records) < 10
    assert sum(float(r["cost"]) for r in records) <= 0.015
    assert sim.log.count() == len(records)  # refused calls were never sent


def test_batch_input_errors(tmp_path: Path, sim: GatewaySimulator) -> None:
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    items.write_text('{"id": 1, "text": "a"}\nnot json\n')
    bad = cli("batch", str(items), "-o", str(out), "--sim")
    assert bad.exit_code == 2 and "line 2: not valid JSON" in bad.stderr
    assert not out.exists()  # refused before any item ran: no empty file left
    write_items(items, 2)
    missing = cli("batch", str(items), "-o", str(out), "-p", "{nope}", "--sim")
    assert missing.exit_code == 2 and "no field nope" in missing.stderr
    assert not out.exists()
    out.write_text("hello\n")
    not_ours = cli("batch", str(items), "-o", str(out), "-p", "{text}", "--sim")
    assert not_ours.exit_code == 2 and "not a batch result" in not_ours.stderr
    assert out.read_text() == "hello\n"  # left untouched


def test_batch_with_a_chain_and_a_fatal_error(
    tmp_path: Path, sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_items(items, 3)
    (tmp_path / "my_chain.py").write_text(
        "from langchain_core.output_parsers import StrOutputParser\n"
        "from langchain_core.prompts import ChatPromptTemplate\n"
        "def make(model):\n"
        "    prompt = ChatPromptTemplate.from_template('Title for: {text}')\n"
        "    return prompt | model | StrOutputParser()\n"
    )
    monkeypatch.chdir(tmp_path)
    args = ["batch", str(items), "-o", str(out), "--chain", "my_chain:make"]
    result = cli(*args, "--model", "deepseek-v3.2", env=sim_env(sim))
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert all("Title for: document" in r["output"] for r in records)
    assert {r["model"] for r in records} == {"deepseek-v3.2"}

    other = tmp_path / "other.jsonl"
    env = {**sim_env(sim), "HOLYSHEEP_API_KEY": "hs-wrong"}
    bad_key = cli("batch", str(items), "-o", str(other), "-p", "{text}", env=env)
    assert bad_key.exit_code == 1
    assert "rejected the API key" in bad_key.stderr
    assert not other.exists()  # nothing ran: no empty results file is left behind


# -- unreadable input: clear errors, never a traceback ------------------------------
def damage(path: Path) -> None:
    """Overwrite the middle half of a file with garbage."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 4)
        f.write(b"\xff" * (size // 2))


def write_ledger(path: Path, n: int = 3000) -> None:
    with SQLiteLedger(path) as ledger:
        ledger.record_many(
            CallRecord(
                timestamp=time.time(),
                run_id=f"run-{i}",
                requested_model="gpt-4.1",
                served_model="gpt-4.1",
                outcome="ok",
                usage=TokenUsage(input=100, output=20),
                cost=Decimal("0.00128"),
                tags=("team:a",),
            )
            for i in range(n)
        )


def test_non_utf8_batch_input_names_the_file_and_line(tmp_path: Path) -> None:
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    items.write_bytes(b'{"id": 1, "text": "ok"}\n{"id": 2, "text": "caf\xe9"}\n')
    result = cli("batch", str(items), "-o", str(out), "-p", "{text}", "--sim")
    assert result.exit_code == 2, result.output
    assert f"{items}, line 2: not UTF-8 text (byte 0xe9 at column 23)" in (
        result.stderr
    )
    assert "save the file as UTF-8" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_non_utf8_pricing_file_names_the_file_and_line(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_bytes(
        b'{"models": {\n  "my-model": {"input": "1", "output": "2",\n'
        b'  "source": "tarif \xe0 jour"}}}\n'
    )
    result = cli("models", env={"HOLYSHEEP_PRICING_FILE": str(prices)})
    assert result.exit_code == 1, result.output
    assert f"({prices}, line 3): not UTF-8 text" in result.stderr
    assert "UnicodeDecodeError" not in result.stderr


def test_sim_port_and_fault_file_are_checked(tmp_path: Path) -> None:
    for port in ("99999", "65536", "-1"):
        result = cli("sim", "--port", port)
        assert result.exit_code == 2, result.output
        assert "--port must be a port number from 1 to 65535, or 0 for any " in (
            result.stderr
        )
        assert f"got {port}" in result.stderr
        assert "OverflowError" not in result.stderr
    faults = tmp_path / "faults.json"
    faults.write_bytes(b'{"models": {\n "gpt-4.1": {"then": {"fault": "\xff"}}}}\n')
    bad = cli("sim", "--faults", str(faults), "--check")
    assert bad.exit_code == 2, bad.output
    assert f"fault file {faults}, line 2: not UTF-8 text" in bad.stderr


def test_report_on_a_damaged_ledger_names_it_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    write_ledger(path)
    assert cli("report", "--ledger", str(path)).exit_code == 0
    damage(path)
    for by in ("day", "tag"):
        result = cli("report", "--ledger", str(path), "--by", by)
        assert result.exit_code == 1, result.output
        assert f"The ledger {path} is damaged" in result.stderr
        assert f"mv {path} {path}.damaged" in result.stderr
        assert "DatabaseError" not in result.stderr


def test_batch_with_a_damaged_ledger_reports_after_the_summary(
    tmp_path: Path, sim: GatewaySimulator
) -> None:
    path, items, out = (tmp_path / n for n in ("l.sqlite3", "in.jsonl", "o.jsonl"))
    write_ledger(path)
    size = path.stat().st_size
    with path.open("r+b") as f:  # every page after the schema is garbage
        f.seek(2 * 4096)
        f.write(b"\xff" * (size - 2 * 4096))
    write_items(items, 2)
    args = ["batch", str(items), "-o", str(out), "-p", "{text}", "--ledger", str(path)]
    result = cli(*args, env=sim_env(sim))
    assert result.exit_code == 1, result.output
    assert "job total: 2 results" in result.stdout  # the job itself finished
    assert f"could not be written to {path}: the file is damaged" in result.stderr
    assert [r["status"] for r in map(json.loads, out.read_text().splitlines())] == [
        "ok",
        "ok",
    ]


# -- the real console script ---------------------------------------------------
def test_piped_output_is_plain_text() -> None:
    commands = (["models"], ["--help"], ["ping", "--sim", "-n", "2"])
    procs = [
        subprocess.Popen(
            [HOLYSHEEP, *args],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip()
        plain(out)
        plain(err)


def test_sim_command_serves_faults_until_ctrl_c(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(
        json.dumps(
            {"models": {"gpt-4.1": {"sequence": [{"fault": "status", "code": 503}]}}}
        )
    )
    proc = subprocess.Popen(
        [HOLYSHEEP, "sim", "--port", "0", "--faults", str(faults)],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
        model = ChatHolySheep(
            model="gpt-4.1", base_url=url, api_key="hs-simulator-key", max_retries=0
        )
        with pytest.raises(Exception, match="503"):
            model.invoke("hi")
        assert "simulated reply" in model.invoke("hi").text
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "served 2 chat requests" in err

    bad = tmp_path / "bad.json"
    bad.write_text('{"models": {"gpt-4.1": {"sequence": [{"fault": "nope"}]}}}')
    check = cli("sim", "--faults", str(bad), "--check")
    assert check.exit_code == 2 and "fault file" in check.stderr


def test_cli_without_its_extra_says_what_to_install() -> None:
    code = "import sys; sys.modules['typer'] = None; import langchain_holysheep.cli"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0
    assert "pip install 'langchain-holysheep[cli]'" in run.stderr
