"""A plain (non-editable) install serves the web client: the wheel carries the built client, not load_tests.

The wheel is built from this checkout and installed into a fresh venv with `--no-deps`; the dependencies come
from the test environment's site-packages through a path file (no download), but nettlege itself only from the
wheel, started from a directory outside the checkout so nothing of the checkout can be imported instead.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import sysconfig
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert (ROOT / "signaling" / "web" / "index.html").is_file(), (
        "the web client is not built into signaling/web: run `make install` (npm run build in web_client)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, timeout=300, capture_output=True)
    (built,) = out.glob("nettlege-*.whl")
    return built


def test_the_wheel_ships_the_client_and_no_load_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "signaling/web/index.html" in names
    assert "signaling/web/sw.js" in names  # the turn notification's service worker, served at /sw.js
    assert any(n.startswith("signaling/web/js/") for n in names)
    assert any(n.startswith("signaling/web/vendor/") for n in names)
    assert not [n for n in names if n.startswith(("load_tests/", "tests/"))]
    assert not [n for n in names if n.endswith(("package.json", ".test.mjs"))]


def test_an_installed_wheel_serves_the_page(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300, capture_output=True)
    fresh_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    # Dependencies from the test environment, appended after the fresh site-packages (so the wheel wins).
    (Path(fresh_site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([str(env_dir / "bin" / "nettlege"), "serve", "--port", str(port)], cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "NETTLEGE_GC_TUNING": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("nettlege is running"), (line, proc.stderr.read() if proc.poll() is not None else "")
        where = subprocess.run([str(py), "-c", "import signaling; print(signaling.__file__)"], cwd=tmp_path,
                               check=True, capture_output=True, text=True).stdout
        assert str(ROOT) not in where  # the wheel's copy, not the checkout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            page = resp.read().decode()
        assert "not built" not in page and "<html" in page.lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/js/app.js", timeout=10) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(15)
