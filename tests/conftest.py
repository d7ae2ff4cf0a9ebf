"""Fixtures shared by every test folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# External conformance data lives beside the repo (../shared/conformance), never inside it.
CONFORMANCE = ROOT.parent / "shared" / "conformance"

# Unit tests talk to moto's in-process mocks; make sure nothing can reach a real account.
os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")
os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])  # Lambda sets both
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
    os.environ[_name] = "testing"
os.environ.pop("AWS_PROFILE", None)


def pytest_configure(config):
    # make test runs them; make mutation leaves them out (docs/mutation.md says why).
    config.addinivalue_line("markers", "fuzz: a Hypothesis property over thousands of inputs (tens of seconds)")


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance data not found at {CONFORMANCE}: check out shared/ beside the repo")
    return CONFORMANCE


@pytest.fixture(autouse=True)
def _fresh_settings_and_clients():
    """Settings are read once per container and clients built once: each test is a new container
    (its monkeypatched environment and its mock_aws are seen)."""
    from mangaassist import clients, settings

    settings.reload()
    clients.reset()
    yield
    settings.reload()
    clients.reset()


# Every setting a function reads (mangaassist.settings), as the local stack sets them for
# "mangaassist-test": tests that run handlers or workers start from these.
PLATFORM_SETTINGS = {
    "BUILD_VERSION": "test",
    "EVENT_BUS_NAME": "mangaassist-test-bus",
    "WEBHOOK_SOURCES": "{}",
    "WEBHOOK_SECRET_PREFIX": "mangaassist-test/webhooks/",
    "WEBHOOK_MAX_BODY_BYTES": str(1024 * 1024),
    "MODEL_PROVIDER": "local",
    "MODEL_FAST_ID": "local.grounded-v1",
    "MODEL_FALLBACK_ID": "local.grounded-v1",
    "EMBEDDINGS_PROVIDER": "local",
    "EMBEDDINGS_MODEL_ID": "local.hashed-ngrams-v1",
    "EMBEDDINGS_DIMENSION": "256",
    "VECTOR_STORE": "local",
    "VECTOR_INDEX": "products",
}


@pytest.fixture
def platform_env(monkeypatch, tmp_path) -> dict:
    """The platform's settings in the environment, tables named test-<key>, data under tmp_path."""
    import json

    wiring = json.loads((ROOT / "terraform" / "wiring.json").read_text())
    values = {**PLATFORM_SETTINGS, "LOCAL_DATA_DIR": str(tmp_path)}
    values.update({f"{name.upper()}_TABLE": f"test-{name}" for name in wiring["tables"]})
    values.update({f"{name.upper()}_BUCKET": f"test-{name.replace('_', '-')}" for name in wiring["buckets"]})
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values

# Powertools' own settings, as Terraform sets them; metrics are off unless a test turns them on.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "mangaassist")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MangaAssist")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
