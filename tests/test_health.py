"""/health over real HTTP: healthy on a migrated database, unhealthy (503, not 500) when the database breaks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from hotline.api.app import create_app
from hotline.db.migrate import head_revision, upgrade
from hotline.settings import Settings


async def test_health_reports_database_and_schema(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["schema_revision"] == head_revision()
    assert body["database"]["lines_on_unconfigured_pbxs"] == []


async def test_health_reports_broken_database_as_unhealthy(tmp_path: Path) -> None:
    db = tmp_path / "broken.db"
    url = f"sqlite+aiosqlite:///{db}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(database_url=url, auto_migrate=False, _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, start_services=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hotline.test") as http:
            assert (await http.get("/health")).status_code == 200
            await app.state.runtime.engine.dispose()  # drop pooled connections, then corrupt the file
            db.write_bytes(b"this is not a database" * 512)
            for suffix in ("-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            response = await http.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["database"]["ok"] is False
    assert body["database"]["error"]


async def test_unknown_route_is_a_json_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["error_id"] == "not-found"


async def test_openapi_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert "/health" in response.json()["paths"]
    assert (await client.get("/docs")).status_code == 200
