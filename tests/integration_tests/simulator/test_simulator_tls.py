"""The simulator over HTTPS: verified against its CA, refused without it."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx2
import pytest
import trustme

from langchain_holysheep.simulator import GatewaySimulator, LatencyRelay
from tests.integration_tests.simulator._helpers import KEY, USER, chat, cli_server

HEADERS = {"Authorization": f"Bearer {KEY}"}


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_https_verifies_against_the_ca_only(
    ca: trustme.CA, tls_sim: GatewaySimulator
) -> None:
    assert tls_sim.tls
    assert tls_sim.base_url.startswith("https://127.0.0.1:")
    verify = _trusting(ca)
    with httpx2.Client(base_url=tls_sim.base_url, headers=HEADERS, verify=verify) as h:
        assert chat(h).json()["choices"][0]["message"]["content"]
    system_only = ssl.create_default_context()
    with (
        httpx2.Client(
            base_url=tls_sim.base_url, headers=HEADERS, verify=system_only
        ) as h,
        pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        chat(h)
    plain = tls_sim.base_url.replace("https://", "http://")
    with (
        httpx2.Client(base_url=plain, headers=HEADERS) as h,
        pytest.raises(httpx2.HTTPError),
    ):
        chat(h)  # plain HTTP to the TLS port gets no answer


def test_key_in_its_own_file(ca: trustme.CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    with (
        GatewaySimulator(
            api_key=KEY, ssl_certfile=cert_file, ssl_keyfile=key_file
        ) as sim,
        httpx2.Client(
            base_url=sim.base_url, headers=HEADERS, verify=_trusting(ca)
        ) as h,
    ):
        assert chat(h).status_code == 200


def test_tls_settings_are_checked_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot serve TLS"):
        GatewaySimulator(ssl_certfile=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="needs ssl_certfile"):
        GatewaySimulator(ssl_keyfile=tmp_path / "key.pem")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match="Pass PEM files"):
        GatewaySimulator(ssl_certfile=not_pem)


def test_cli_serves_https(ca: trustme.CA, server_pem: Path) -> None:
    with cli_server("--api-key", KEY, "--ssl-certfile", str(server_pem)) as (
        proc,
        base_url,
    ):
        assert base_url.startswith("https://127.0.0.1:")
        verify = _trusting(ca)
        with httpx2.Client(base_url=base_url, headers=HEADERS, verify=verify) as h:
            assert chat(h).status_code == 200
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_ssl_cert_file_makes_both_chat_models_trust_the_ca(
    ca: trustme.CA,
    tls_sim: GatewaySimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # httpx2 (the openai SDK's HTTP library) reads SSL_CERT_FILE when a client is
    # built; no code change and no weaker verification for anyone else.
    from langchain_openai import ChatOpenAI

    from langchain_holysheep import ChatHolySheep

    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    # A relay without delay gives a URL no earlier client was built for.
    with LatencyRelay(tls_sim.base_url, latency=0.0) as relay:
        for model in (
            ChatOpenAI(model="gpt-4.1", base_url=relay.url, api_key=KEY),
            ChatHolySheep(model="gpt-4.1", base_url=relay.url, api_key=KEY),
        ):
            assert model.invoke(USER[0]["content"]).content
            assert "".join(str(c.content) for c in model.stream("hi"))
