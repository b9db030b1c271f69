"""Which gateway a command talks to: the real one, or an embedded simulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_holysheep._gateway_env import API_KEY_ENV, resolve_base_url

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["Target", "connect", "have_key"]


@dataclass
class Target:
    """A gateway to call.

    Attributes:
        base_url: the OpenAI-compatible base URL.
        api_key: the key to send.
        sim: the embedded simulator, when the target is one (else `None`).
    """

    base_url: str
    api_key: SecretStr
    sim: Any = None

    @property
    def simulated(self) -> bool:
        """Whether this is the embedded simulator."""
        return self.sim is not None

    @property
    def label(self) -> str:
        """A human description, e.g. `embedded simulator at http://127.0.0.1:5/v1`."""
        kind = "embedded simulator" if self.simulated else "HolySheep gateway"
        return f"{kind} at {self.base_url}"

    def model_kwargs(self) -> dict[str, Any]:
        """`base_url` and `api_key` for `ChatHolySheep(...)`."""
        return {"base_url": self.base_url, "api_key": self.api_key}


def have_key() -> bool:
    """Whether `HOLYSHEEP_API_KEY` is set to something other than whitespace."""
    return bool(os.environ.get(API_KEY_ENV, "").strip())


@contextmanager
def connect(*, simulate: bool | None = None) -> Iterator[Target]:
    """The real gateway when a key is set, else an embedded simulator.

    The simulator runs for the duration of the `with` block.

    Args:
        simulate: `True` forces the simulator, `False` forces the real gateway
            (raising `MissingAPIKeyError` without a key), `None` decides by the key.
    """
    if simulate is None:
        simulate = not have_key()
    if not simulate:
        from langchain_holysheep._gateway import resolve_api_key

        yield Target(resolve_base_url(), resolve_api_key())
        return
    from pydantic import SecretStr

    from langchain_holysheep.simulator import GatewaySimulator

    with GatewaySimulator() as sim:
        yield Target(sim.base_url, SecretStr(sim.api_key), sim)
