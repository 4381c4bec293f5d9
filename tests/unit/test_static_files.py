"""signaling.static_files: the built client read once and served from memory."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from signaling import static_files


def _client_dir(tmp_path: Path) -> Path:
    (tmp_path / "js" / "views").mkdir(parents=True)
    (tmp_path / "js" / "app.js").write_text("export const a = 1;\n")
    (tmp_path / "js" / "views" / "room.js").write_text("export const b = 2;\n")
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "app.css").write_text("body{}\n")
    (tmp_path / "secret.txt").write_text("not served\n")
    (tmp_path / "js" / "link.js").symlink_to(tmp_path / "secret.txt")
    return tmp_path


async def test_built_files_are_served_with_their_types_and_nothing_else(tmp_path: Path) -> None:
    app = web.Application()
    static_files.add_static(app, _client_dir(tmp_path), ("js", "css"))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/static/js/views/room.js")
        assert resp.status == 200 and await resp.text() == "export const b = 2;\n"
        assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
        css = await client.get("/static/css/app.css")
        assert css.status == 200 and css.headers["Content-Type"] == "text/css; charset=utf-8"
        for path in ("/static/js/link.js", "/static/secret.txt", "/static/js/../secret.txt",
                     "/static/js/nope.js", "/static/js/", "/static/" + "a/" * 500):
            assert (await client.get(path)).status == 404, path


def test_a_file_changed_after_startup_is_served_as_it_was(tmp_path: Path) -> None:
    files = static_files.load(_client_dir(tmp_path) / "js", "/static/js/")
    (tmp_path / "js" / "app.js").write_text("changed\n")
    assert files["/static/js/app.js"].body == b"export const a = 1;\n"
    assert "/static/js/link.js" not in files
