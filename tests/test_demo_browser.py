"""`make demo` in a real browser (issue 20): headless Chromium (Debian's package, driven by Playwright,
no browser download) walks /start → /login → scan → picks → 👍 → /profile on the chat page, and sees
what a person would. Screenshots go to the test's temporary directory (DEMO_SCREENSHOTS=docs/ writes
the README's)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.demo import running_demo
from tests.test_deploy import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install -e '.[test]')"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine (Debian: apt-get install chromium)"
)


async def _send(page, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")


async def test_a_person_logs_in_gets_picks_likes_one_and_sees_their_profile(tmp_path):
    shots = Path(os.environ.get("DEMO_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    port = free_port()
    async with running_demo(port, data_dir=tmp_path / "data") as _demo, playwright.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 480, "height": 900})
        await page.goto(f"http://127.0.0.1:{port}/")
        bot = page.locator(".row.bot .bubble")

        await _send(page, "/start")
        await bot.filter(has_text="/login").first.wait_for(timeout=15_000)
        assert await page.locator(".row.me .bubble", has_text="/start").count() == 1

        await _send(page, "/login")
        qr = page.locator(".row.bot .bubble.photo img").first
        await qr.wait_for(timeout=15_000)
        await page.wait_for_function("document.querySelector('.row.bot .bubble.photo img').naturalWidth > 0")
        await page.screenshot(path=shots / "demo-login.png")

        await page.locator("#scan").click()
        await bot.filter(has_text="first personal picks are ready").first.wait_for(timeout=120_000)
        await _send(page, "/recommend")
        card = page.locator(".row.bot", has=page.locator(".caption", has_text=re.compile(r"\d{1,3}/100"))).first
        await card.wait_for(timeout=60_000)
        caption = await card.locator(".caption").inner_text()
        assert "https://www.bilibili.com/video/BV" in await card.locator(".caption a").last.get_attribute("href")
        assert re.search(r"\b\d{1,3}/100\b", caption)
        # The first page ends with what NN/100 means (told once): the chat is still until a later command.
        await page.locator(".row.bot .bubble", has_text="NN/100 is how much").wait_for(timeout=30_000)
        await page.wait_for_function(
            "[...document.querySelectorAll('.bubble.photo img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        await card.scroll_into_view_if_needed()
        await page.screenshot(path=shots / "demo-pick.png")

        await card.locator(".kb button").first.click()  # 👍, first on the first row
        await page.locator("#toast").filter(has_text=re.compile(r"\S")).wait_for(timeout=15_000)
        await card.locator(".kb button", has_text="✓").first.wait_for(timeout=15_000)
        assert "✓" in await card.locator(".kb .kbrow").first.inner_text()

        photos_before = await page.locator(".bubble.photo").count()
        await _send(page, "/profile")
        await page.wait_for_function(
            f"document.querySelectorAll('.bubble.photo').length > {photos_before}", timeout=120_000
        )
        profile = page.locator(".bubble.photo img").last
        await page.wait_for_function(
            "(() => { const i = [...document.querySelectorAll('.bubble.photo img')].pop();"
            " return i.complete && i.naturalWidth > 300; })()"
        )
        await profile.scroll_into_view_if_needed()
        await page.screenshot(path=shots / "demo-profile.png")

        # "Advance to tomorrow": the bot's clock reaches the digest time and the tick sends the digest.
        cards_before = await page.locator(".caption", has_text=re.compile(r"\d{1,3}/100")).count()
        clock_before = await page.locator("#clock").inner_text()
        await page.locator("#advance").click()
        await page.wait_for_function(
            "n => [...document.querySelectorAll('.caption')].filter(c => /\\d{1,3}\\/100/.test(c.textContent)).length > n",
            arg=cards_before,
            timeout=120_000,
        )
        assert await page.locator("#clock").inner_text() != clock_before  # the bot's clock moved on
        await browser.close()
    for name in ("demo-login.png", "demo-pick.png", "demo-profile.png"):
        assert (shots / name).stat().st_size > 10_000
