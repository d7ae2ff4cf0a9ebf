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
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
    os.environ[_name] = "testing"
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance data not found at {CONFORMANCE}: check out shared/ beside the repo")
    return CONFORMANCE
