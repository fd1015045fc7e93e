"""The reference console page in headless Chromium against a real server: sign in, screen pop from a simulated
call pushed over the WebSocket, registration saved; a screenshot goes to test-output/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.db.models import Registration
from hotline.settings import Settings
from test_console_support import (
    PASSWORD,
    LiveHotline,
    add_call,
    add_registration,
    seed_people,
    set_presence,
    start_live,
    wait_until,
)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"


@pytest.fixture
async def live(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[LiveHotline]:
    users = await seed_people(sessions)
    await set_presence(sessions, users["ana"], "available")
    hotline, stop = await start_live(settings, operators={"ana": "Local/101@phones/n"})
    await hotline.listener.reload_lines()
    try:
        yield hotline
    finally:
        await stop()


async def test_console_page_signs_in_pops_the_caller_and_saves_a_registration(
    live: LiveHotline, sessions: async_sessionmaker[AsyncSession]
) -> None:
    earlier = await add_call(sessions, caller_number="0799000111", operator="ana")
    await add_registration(sessions, earlier, topic_id=3, summary="needed a room", resolution="resolved")
    OUTPUT.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{live.base_url}/console")
            await page.fill("#username", "ana")
            await page.fill("#password", PASSWORD)
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("#console-view:not([hidden])")
            await page.wait_for_function("document.getElementById('link').textContent === 'push: live'")
            await page.wait_for_function("document.getElementById('script-greeting').textContent.includes('Ana Pop')")
            call = live.simulator.place_call("5551000", "0799000111", "Maria Ionescu", answer_after=1.0, talk=6.0)
            await page.wait_for_function("document.getElementById('pop-name').textContent === 'Maria Ionescu'")
            await page.wait_for_selector("#pop-history li:has-text('needed a room')")
            await page.wait_for_selector("#reg-save:not([disabled])")
            await page.select_option("#reg-topic", label="Admissions")
            await page.fill("#reg-summary", 'asked, "when" do admissions close')
            await page.select_option("#reg-resolution", "escalated")
            await page.screenshot(path=str(OUTPUT / "console-screen-pop.png"), full_page=True)
            # Only the operator who took the call may register it: wait until it is answered.
            await page.wait_for_selector("#pop-state:has-text('talking')", timeout=60_000)
            await page.click("#reg-save")
            await page.wait_for_selector("#notice:has-text('saved')")
            await page.screenshot(path=str(OUTPUT / "console-registered.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()
    async with sessions() as session:
        saved = (await session.scalars(select(Registration).where(Registration.call_id != earlier))).all()
    assert [(r.topic_id, r.resolution, r.summary) for r in saved] == [
        (1, "escalated", 'asked, "when" do admissions close')
    ]
    await wait_until(lambda: call.outcome.done(), 30, "the call to end")
    assert (OUTPUT / "console-registered.png").stat().st_size > 10_000
