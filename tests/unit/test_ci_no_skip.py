"""With CI=true a skipped test fails the run (a missing tool must not pass silently); outside CI it is listed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOOK = Path(__file__).resolve().parents[1] / "conftest.py"


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(HOOK.read_text())
    (tmp_path / "test_probe.py").write_text("import pytest\n\ndef test_needs_a_tool():\n"
                                            "    pytest.skip('chromium is not installed')\n")
    env = {"PATH": "/usr/bin:/bin", **({"CI": ci} if ci else {})}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=HOOK.parents[1], env=env, capture_output=True, text=True, timeout=120)


def test_a_skip_fails_with_ci_true(tmp_path: Path) -> None:
    done = _run(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "skipped with CI=true" in done.stdout and "chromium is not installed" in done.stdout


def test_a_skip_is_listed_outside_ci(tmp_path: Path) -> None:
    done = _run(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "SKIPPED" in done.stdout and "chromium is not installed" in done.stdout
