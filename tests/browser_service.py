"""A real browser for the ``browser`` tests: headless Chromium from Debian's packages,
driven by Selenium through Debian's chromedriver (nothing downloaded). The session
fixture ``chromium`` installs both on first use (``services/browser/install.sh``) and
gives a function that opens a new browser; each is closed at the end of the session.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from tests.service_notice import announce

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def chromium(pytestconfig: pytest.Config) -> Callable[[], object]:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        announce(pytestconfig, "chromium: installing Debian's chromium and chromium-driver")
        subprocess.run([PROJECT / "services" / "browser" / "install.sh"], check=True)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opened = []

    def open_browser() -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=1600,1000", "--disable-dev-shm-usage"):
            options.add_argument(argument)
        driver = webdriver.Chrome(options=options,
                                  service=Service(shutil.which("chromedriver")))
        driver.implicitly_wait(5)
        opened.append(driver)
        return driver

    yield open_browser
    for driver in opened:
        driver.quit()
