"""A key's reservation lease: short enough to free a dead worker's money quickly,
renewed while a stream delivers, so a live stream longer than it stays held.

The key's budget takes `lease = 1.5` (seconds). The upstream sends two content
chunks and then keep-alive chunks (`"choices": []`) until the client leaves: a
stream open for twice the lease must still hold its reservation (without
renewal the store would have let it lapse, and other calls could spend it);
once the client leaves it is settled to what was delivered.
"""

from __future__ import annotations

import threading
from pathlib import Path

from langchain_holysheep.serve.config import hash_key
from langchain_holysheep.simulator import Fault, GatewaySimulator
from tests.integration_tests.serve._proxy import open_stream, running_proxy
from tests.integration_tests.serve.test_proxy_lifecycle import STREAM

LEASED = "hsv-test-key-leased-31313131313"
LEASE = 1.5
EXTRA = (
    f'[keys.leased]\nhash = "{hash_key(LEASED)}"\ngroups = ["*"]\n'
    f'budget = {{ limit = "10", window = "total", lease = {LEASE} }}\n'
)


def test_a_stream_longer_than_the_lease_keeps_its_reservation(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    sim.script("gpt-4.1", [Fault.empty_chunks(after_chunks=2, interval=0.1)])
    with running_proxy(tmp_path, sim, extra=EXTRA) as proxy:
        budget = proxy.runtime.spend.budgets["leased"]
        assert budget.lease == LEASE
        with open_stream(proxy.base_url, LEASED, STREAM):
            held = budget.reserved()
            assert held > 0
            threading.Event().wait(2 * LEASE)  # let two leases pass, stream open
            assert sim.log.count(finished=True) == 0  # still streaming
            assert budget.reserved() == held  # renewed, not lapsed
        proxy.recorded.wait(1)  # the client left: settled
        assert budget.reserved() == 0
        assert budget.spent() > 0
