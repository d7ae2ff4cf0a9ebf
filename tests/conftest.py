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


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance data not found at {CONFORMANCE}: check out shared/ beside the repo")
    return CONFORMANCE
