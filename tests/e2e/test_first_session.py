"""The README's first session runs as it is written: its shell block, verbatim, against a fresh
`make run` (found through PORT and MANGAASSIST_DATA, as the README's settings say)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from e2e.conftest import ROOT, start_stack, stop_stack

pytestmark = pytest.mark.e2e


def readme_block(heading: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"{heading} has one shell block"
    return blocks[0]


def first_session_block() -> str:
    return readme_block("A first session with `make run`")


def test_the_readmes_first_session_runs_verbatim(tmp_path: Path):
    stack = start_stack(tmp_path / "first-session")
    try:
        env = {**os.environ, "PORT": stack.base_url.rsplit(":", 1)[1], "MANGAASSIST_DATA": str(stack.data_dir)}
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", first_session_block()], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "Traceback" not in output and "error:" not in output, output
        sends = re.findall(r"^(stripe|catalog): HTTP (\d+)", done.stdout, re.M)
        assert sends == [("stripe", "202"), ("catalog", "202"), ("stripe", "202")], output
        assert re.search(r'"product_id": ?"bk-frieren-14"', done.stdout), "the search found the new release"
        assert re.search(r"^payment-completed\s+order_confirmation\s+\d+\s+1\s+1\s+", done.stdout, re.M), output
        assert re.search(r"redrove 1, failed 0, 0 left visible", done.stdout), output
        dry_run, replay = re.findall(r"payment-completed\s+(\d+) event\(s\)", done.stdout)
        assert int(dry_run) == int(replay) >= 2, output  # both payments are in the archive
        assert re.search(r"^replay replay-\S+: (\d+)/\1 delivered$", done.stdout, re.M), output
    finally:
        assert stop_stack(stack) == 0


def test_the_readmes_api_examples_run_verbatim(tmp_path: Path):
    stack = start_stack(tmp_path / "api-session")
    try:
        env = {**os.environ, "PORT": stack.base_url.rsplit(":", 1)[1], "MANGAASSIST_DATA": str(stack.data_dir)}
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", readme_block("The assistant's API")], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "Traceback" not in output, output
        assert re.search(r'"title": "葬送のフリーレン 14"', done.stdout), "the first answer cites the new release"
        assert "DELETE session: 204" in done.stdout, output
        assert re.search(r'"model_id": "local\.deep-v1"', done.stdout), "the premium user's turn: the deep model"
        assert re.search(r'"status": "succeeded"', done.stdout), "the job finished"
        assert '{"message": "Forbidden"} 403' in done.stdout, output
        assert '{"message": "Invalid request body"} 400' in done.stdout, output
    finally:
        assert stop_stack(stack) == 0
