"""The proxy's own metrics: requests by group and status, duration, in flight."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from langchain_holysheep.serve._metrics import ProxyMetrics


def _samples(metrics: ProxyMetrics) -> dict[tuple[str, tuple], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_in_flight_counts_requests_until_done() -> None:
    metrics = ProxyMetrics()
    assert _samples(metrics)[("holysheep_proxy_in_flight", ())] == 0
    metrics.started()
    metrics.started()
    assert _samples(metrics)[("holysheep_proxy_in_flight", ())] == 2
    metrics.done("smart", 200, 0.01)
    assert _samples(metrics)[("holysheep_proxy_in_flight", ())] == 1
    metrics.done("smart", 502, 0.02)
    assert _samples(metrics)[("holysheep_proxy_in_flight", ())] == 0


def test_requests_are_counted_per_group_and_status() -> None:
    metrics = ProxyMetrics()
    for group, status in [("smart", 200), ("smart", 200), ("smart", 429), ("-", 401)]:
        metrics.started()
        metrics.done(group, status, 0.003)
    got = _samples(metrics)
    total = "holysheep_proxy_requests_total"
    assert got[(total, (("group", "smart"), ("status", "200")))] == 2
    assert got[(total, (("group", "smart"), ("status", "429")))] == 1
    assert got[(total, (("group", "-"), ("status", "401")))] == 1
    count = "holysheep_proxy_request_seconds_count"
    assert got[(count, (("group", "smart"),))] == 3
    assert got[(count, (("group", "-"),))] == 1
    buckets = "holysheep_proxy_request_seconds_bucket"
    assert got[(buckets, (("group", "smart"), ("le", "0.005")))] == 3


def test_apps_in_one_process_keep_their_own_counts() -> None:
    one, two = ProxyMetrics(), ProxyMetrics()
    one.started()
    one.done("smart", 200, 0.01)
    total = ("holysheep_proxy_requests_total", (("group", "smart"), ("status", "200")))
    assert _samples(one)[total] == 1
    assert total not in _samples(two)
