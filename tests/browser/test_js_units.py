"""The client's pure modules under node's test runner (web_client/test/*.test.mjs), from pytest so CI runs them."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import ENV_CI, WEB


@pytest.mark.skipif(shutil.which("node") is None and not ENV_CI, reason="node is not installed")
def test_client_modules_pass_their_node_tests() -> None:
    result = subprocess.run(["node", "--test", str(WEB / "test")], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
