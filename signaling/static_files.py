"""The built web client, served from memory.

The client is ~45 small files (well under a megabyte), read once when the app is built. A request is a dict
lookup: no file system and no thread per request. aiohttp's static route stats, opens and sends every file
through the loop's default executor (two or three jobs per request, six threads on a 2-CPU machine). The app
loads ~45 modules at once, and in the test suite one of them now and then never arrived (30 s and more), so the
page stayed blank. Only files that were in the built directories at startup exist: an unknown or odd path is a
plain 404, and nothing outside those directories can be named.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

# JavaScript modules must be served as JavaScript (a browser refuses a module of another type).
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html",
          ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".map": "application/json"}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str


def read(path: Path) -> StaticFile | None:
    """One file, or None if it is not a regular file (missing, a directory or a symlink)."""
    if path.is_symlink() or not path.is_file():
        return None
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return StaticFile(path.read_bytes(), _TYPES.get(path.suffix, guessed))


def load(directory: Path, prefix: str) -> dict[str, StaticFile]:
    """Every file below `directory` by its URL (`prefix` + relative path); symlinks are not followed."""
    files: dict[str, StaticFile] = {}
    if directory.is_dir() and not directory.is_symlink():
        for path in sorted(directory.rglob("*")):
            if (file := read(path)) is not None:
                files[prefix + path.relative_to(directory).as_posix()] = file
    return files


def response(file: StaticFile, headers: dict[str, str] | None = None) -> web.Response:
    text_like = file.content_type.startswith("text/") or file.content_type in ("application/json",)
    return web.Response(body=file.body, content_type=file.content_type,
                        charset="utf-8" if text_like else None, headers=headers)


def add_static(app: web.Application, client_dir: Path, dirs: tuple[str, ...]) -> None:
    """GET /static/<dir>/<path> for each built directory in `dirs`."""
    files: dict[str, StaticFile] = {}
    for sub in dirs:
        files.update(load(client_dir / sub, f"/static/{sub}/"))

    async def serve(request: web.Request) -> web.Response:
        file = files.get(request.path)
        if file is None:
            raise web.HTTPNotFound()
        return response(file)

    app.router.add_get("/static/{path:.+}", serve)
