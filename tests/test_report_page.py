"""The first-week page in a real headless Chromium, served by a real uvicorn on loopback with the demo week."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from playwright.async_api import async_playwright
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.api.app import create_app
from hotline.services.demo_week import generate_demo_week
from hotline.settings import Settings
from hotline.users import create_user

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
PASSWORD = "a long enough password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def server(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[str]:
    await generate_demo_week(sessions, start=date(2026, 11, 23), seed=11, timezone="Europe/Bucharest")
    async with sessions() as session:
        await create_user(session, username="boss", password=PASSWORD, role="supervisor")
        await session.commit()
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, start_services=False), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    for _ in range(200):
        if srv.started:
            break
        await asyncio.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await task


async def test_first_week_page_in_chromium(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        login = await http.post("/api/auth/login", json={"username": "boss", "password": PASSWORD})
        token = login.json()["access_token"]
    OUTPUT.mkdir(exist_ok=True)
    errors: list[str] = []
    hosts: set[str] = set()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                extra_http_headers={"Authorization": f"Bearer {token}"}, viewport={"width": 1200, "height": 900}
            )
            page = await context.new_page()
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: hosts.add(urlsplit(req.url).hostname or req.url))
            response = await page.goto(f"{server}/reports/first-week?tz=Europe/Bucharest")
            assert response is not None and response.status == 200
            assert await page.title() == "Hotline — first week"
            assert await page.locator("svg.chart").count() == 6
            assert await page.locator(".weaknesses li").count() >= 3
            assert "service level" in (await page.locator(".figures").inner_text())
            await page.screenshot(path=str(OUTPUT / "first-week.png"), full_page=True)

            await page.set_viewport_size({"width": 380, "height": 800})
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the page is {overflow}px wider than a narrow window"
            columns = await page.evaluate("getComputedStyle(document.querySelector('.findings')).gridTemplateColumns")
            assert len(columns.split()) == 1  # findings stack in a narrow window
            await page.screenshot(path=str(OUTPUT / "first-week-narrow.png"), full_page=True)
            await page.emulate_media(media="print")
            await page.pdf(path=str(OUTPUT / "first-week.pdf")) if hasattr(page, "pdf") else None

            anonymous = await (await browser.new_context()).new_page()
            denied = await anonymous.goto(f"{server}/reports/first-week")
            assert denied is not None and denied.status == 401
        finally:
            await browser.close()
    assert errors == [] or all("401" in e for e in errors), errors
    assert hosts == {"127.0.0.1"}
    assert (OUTPUT / "first-week.png").stat().st_size > 10_000


def test_svg_charts_escape_every_text() -> None:
    from hotline.reports import svg

    evil = '<script>alert("x")</script>&'
    bar = svg.bar_chart(evil, [evil, "b"], [(evil, [3, 0]), ("two", [1, 2])], unit="&", chart_id='"x')
    line = svg.line_chart(evil, [evil, "b", "c"], [(evil, [50, None, 20])], unit="%", top=100)
    for out in (bar, line):
        assert "<script>" not in out and "&lt;script&gt;" in out and out.startswith("<svg")
    assert bar.count("<rect") == 4 + 2  # four bars, two legend keys
    assert line.count("<polyline") == 2  # the None breaks the line in two
    assert svg.bar_chart("empty", [], []).startswith("<svg")
