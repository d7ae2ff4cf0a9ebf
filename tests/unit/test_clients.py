"""mangaassist.clients: one client per (service, profile), and lazy ones built on first use."""
from __future__ import annotations

from mangaassist import clients


def test_a_lazy_client_is_built_on_first_use_and_follows_reset(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    held = clients.lazy("sqs")
    assert ("sqs", "default") not in clients._built  # holding it built nothing
    assert held.meta.service_model.service_name == "sqs"
    first = clients._built[("sqs", "default")]
    assert held.meta is first.meta  # the container's one client, not another
    clients.reset()
    assert held.meta is not first.meta  # a new container's client after reset
