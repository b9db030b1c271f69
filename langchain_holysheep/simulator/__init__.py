"""The embedded HolySheep gateway simulator.

A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions wire format
(`GET /v1/models`, `POST /v1/chat/completions`, SSE streaming with usage), with
scripted faults (errors, latency, silence, resets, broken streams, replies with
status 200 that are not completions, bodies that drip or only keep alive), seeded
random model profiles, and a ground-truth log of what it received and billed.
It serves HTTPS when given a certificate, and `LatencyRelay` puts a realistic
network (a round trip per exchange, handshakes included) in front of it.

Example:
    ```python
    from langchain_holysheep.simulator import Fault, GatewaySimulator

    with GatewaySimulator() as sim:
        sim.script("gpt-4.1", [Fault.status(503, retry_after=1)])
        llm = ChatOpenAI(base_url=sim.base_url, api_key=sim.api_key, model="gpt-4.1")
    ```

From a shell: `python -m langchain_holysheep.simulator --port 8000 --faults f.json`.
"""

from langchain_holysheep.simulator.cli import main
from langchain_holysheep.simulator.faults import Fault, FaultSpecError
from langchain_holysheep.simulator.log import BilledTotals, RequestLog, RequestRecord
from langchain_holysheep.simulator.plan import FaultPlan
from langchain_holysheep.simulator.profiles import ModelProfile
from langchain_holysheep.simulator.relay import LatencyRelay
from langchain_holysheep.simulator.server import DEFAULT_API_KEY, GatewaySimulator

__all__ = [
    "DEFAULT_API_KEY",
    "BilledTotals",
    "Fault",
    "FaultPlan",
    "FaultSpecError",
    "GatewaySimulator",
    "LatencyRelay",
    "ModelProfile",
    "RequestLog",
    "RequestRecord",
    "main",
]
