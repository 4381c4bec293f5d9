"""The OpenAPI document matches the router; health, readiness and metrics."""

import re

from aiohttp import web

from tests.conftest import bearer, dev_token

# Routes that are not JSON REST resources, documented elsewhere (docs/protocol.md) or not API at all.
NOT_REST = {"/api/v1/openapi.json"}


async def test_openapi_lists_exactly_the_api_routes(app_client):
    doc = await (await app_client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    app: web.Application = app_client.server.app
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and path.startswith("/api/v1/") and route.method not in ("HEAD", "*") and path not in NOT_REST:
            served.add((path, route.method))
    ws_routes = {(p, m) for p, m in served if p.endswith("/signal")}
    assert documented == served, (documented ^ served)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (path, method)
            for name in re.findall(r"{(\w+)}", path):
                assert any(p["name"] == name for p in op["parameters"]), (path, name)
    assert ws_routes <= documented


async def test_openapi_schemas_resolve(app_client):
    doc = await (await app_client.get("/api/v1/openapi.json")).json()
    text = str(doc)
    for ref in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert ref in doc["components"]["schemas"], ref


async def test_health_ready_and_metrics(app_client):
    assert (await (await app_client.get("/healthz")).json()) == {"status": "ok"}
    assert (await app_client.get("/readyz")).status == 200
    citizen = await dev_token(app_client, "a", "citizen")
    await app_client.post("/api/v1/tenants/oslo/services/nettlege/queue", json={"channel": "video", "reason": "r"},
                          headers=bearer(citizen))
    text = await (await app_client.get("/metrics")).text()
    assert 'nettlege_queue_length{service="nettlege",tenant="oslo"} 1.0' in text
    assert "nettlege_http_requests_total" in text


async def test_readyz_fails_when_redis_is_gone(make_config):
    from aiohttp.test_utils import TestClient, TestServer

    from signaling.app import build_app

    config = make_config(redis_url="redis://127.0.0.1:1/0")
    client = TestClient(TestServer(build_app(config), host="127.0.0.1"))
    await client.start_server()
    try:
        r = await client.get("/readyz")
        assert r.status == 503 and (await r.json())["error"] == "redis_unavailable"
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_security_headers(app_client):
    r = await app_client.get("/api/v1/services")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


async def test_forwarded_headers_only_from_trusted_proxies(make_config):
    """X-Forwarded-Proto from a trusted proxy makes the request TLS (HSTS); links never follow Host or
    X-Forwarded-Host: they come from public_url (or the configured own address)."""
    from aiohttp.test_utils import TestClient, TestServer

    from signaling.app import build_app

    for trusted, public_url, hsts, expected in (
            (["127.0.0.1"], "https://video.kommune.no", True, "https://video.kommune.no/#/invite/"),
            ([], None, False, "http://127.0.0.1:8080/#/invite/")):
        config = make_config(trusted_proxies=trusted, public_url=public_url)
        client = TestClient(TestServer(build_app(config), host="127.0.0.1"))
        await client.start_server()
        try:
            doc = await dev_token(client, "d1", "clinician")
            c = await (await client.post("/api/v1/consultations", json={"tenant": "oslo", "service": "nettlege"},
                                         headers=bearer(doc))).json()
            r = await client.post(f"/api/v1/consultations/{c['id']}/invites", json={"role": "relative"},
                                  headers={**bearer(doc), "X-Forwarded-Proto": "https", "Host": "evil.example",
                                           "X-Forwarded-Host": "evil.example"})
            assert (await r.json())["url"].startswith(expected)
            assert ("Strict-Transport-Security" in r.headers) is hsts
        finally:
            await client.close()
