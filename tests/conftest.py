"""Fixtures shared by every test folder."""
from __future__ import annotations

import os
from pathlib import Path

import botocore.auth
import botocore.handlers
import pytest

from embedded import moto_speedups
from embedded.aws import InProcessTransport

ROOT = Path(__file__).resolve().parents[1]
# External conformance data lives beside the repo (../shared/conformance), never inside it.
CONFORMANCE = ROOT.parent / "shared" / "conformance"

# Unit tests talk to moto's in-process mocks; make sure nothing can reach a real account.
os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")
os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])  # Lambda sets both
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
    os.environ[_name] = "testing"
os.environ.pop("AWS_PROFILE", None)

# Every test runs on stock moto and botocore's own handler tables, whatever ran before it: the
# emulator's patches (moto_speedups) and its in-process transport are for the stack's processes.
# Taken before any test module is imported; importing moto_speedups changes nothing.
assert not moto_speedups.applied()
STOCK_MOTO = moto_speedups.points()
STOCK_HANDLERS = list(botocore.handlers.BUILTIN_HANDLERS)
STOCK_SIGNERS = dict(botocore.auth.AUTH_TYPE_MAPS)


@pytest.fixture(autouse=True)
def stock_moto_and_botocore():
    """Fails the test that leaves moto patched or botocore's tables changed, and puts them back
    so the next test still starts from stock."""
    yield
    patched = [path for path, value in moto_speedups.points().items() if value is not STOCK_MOTO[path]]
    handlers_changed = botocore.handlers.BUILTIN_HANDLERS != STOCK_HANDLERS
    signers_changed = botocore.auth.AUTH_TYPE_MAPS != STOCK_SIGNERS
    if not (patched or handlers_changed or signers_changed):
        return
    moto_speedups.restore()
    for entry in list(botocore.handlers.BUILTIN_HANDLERS):  # (event, handler[, where])
        if isinstance(entry[1], InProcessTransport):
            entry[1].uninstall()
    for path in patched:
        owner, name = moto_speedups.resolve(path)
        setattr(owner, name, STOCK_MOTO[path])
    botocore.handlers.BUILTIN_HANDLERS[:] = STOCK_HANDLERS
    botocore.auth.AUTH_TYPE_MAPS.clear()
    botocore.auth.AUTH_TYPE_MAPS.update(STOCK_SIGNERS)
    pytest.fail(f"left behind: moto patched at {patched or 'no point'}, botocore's built-in handlers "
                f"{'changed' if handlers_changed else 'as they were'}, its signers "
                f"{'changed' if signers_changed else 'as they were'}")


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
    "MODEL_FAST_ID": "local.fast-v1",
    "MODEL_FALLBACK_ID": "local.deep-v1",
    "LOCAL_MODEL_LATENCY_MS": "0",
    "LOCAL_MODEL_TOKENS_PER_SECOND": "0",
    "JOB_MAX_ATTEMPTS": "3",
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
    values.update({f"{name.upper()}_QUEUE_URL": f"https://sqs.ap-northeast-1.amazonaws.com/123456789012/test-{name}"
                   for name in wiring["queues"]})
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture(scope="session")
def boto3_session():
    """One boto3 session for tests to set as the default inside mock_aws (which starts each test with
    none, and puts the previous one back when it stops): a new session reads every service's model
    again, S3's alone 0.3 s, most of a moto test's time. Credentials and region come from mock_aws's
    environment, the same in every test."""
    import boto3

    return boto3.session.Session()


@pytest.fixture
def platform_aws(platform_env, boto3_session):
    """moto with every wiring.json table (named test-<key>), bucket and queue, and the bus."""
    import json

    import boto3
    from mangaassist_dev.tables import create_tables
    from moto import mock_aws

    wiring = json.loads((ROOT / "terraform" / "wiring.json").read_text())
    with mock_aws():
        boto3.DEFAULT_SESSION = boto3_session
        create_tables(boto3.client("dynamodb"), {t: f"test-{t}" for t in wiring["tables"]}, wiring["tables"])
        s3 = boto3.client("s3")
        for name in wiring["buckets"]:
            s3.create_bucket(Bucket=f"test-{name.replace('_', '-')}",
                             CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
        sqs = boto3.client("sqs")
        for name in wiring["queues"]:
            sqs.create_queue(QueueName=f"test-{name}")
        boto3.client("events").create_event_bus(Name=platform_env["EVENT_BUS_NAME"])
        yield platform_env

# Powertools' own settings, as Terraform sets them; metrics are off unless a test turns them on.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "mangaassist")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MangaAssist")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
PLATFORM_SETTINGS.update({"APPCONFIG_APPLICATION": "mangaassist-test", "APPCONFIG_ENVIRONMENT": "test",
                          "APPCONFIG_PROFILE": "feature-flags", "FLAGS_MAX_AGE_SECONDS": "5"})
