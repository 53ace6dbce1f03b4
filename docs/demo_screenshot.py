"""Retake docs/demo.png: the demo page after a prediction of a held-out test sequence, in
headless Debian chromium (no browser download).

Start the demo first (`make demo`), then `.venv/bin/python docs/demo_screenshot.py`.
"""

from __future__ import annotations

import argparse

from playwright.sync_api import sync_playwright

# Chromium's own calls (updates, sign-in) go to a closed port: nothing leaves the machine.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--sequence", default=7, type=int, help="the test sequence shown")
    parser.add_argument("--out", default="docs/demo.png")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        page.goto(args.url)
        page.get_by_label("Test sequence").fill(str(args.sequence))
        page.get_by_role("button", name="Predict").click()
        page.locator("#truth img").wait_for(timeout=120_000)
        page.wait_for_timeout(1_500)  # a few frames into the animations
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
