"""The product page in real headless Chromium, all four services under real gunicorn.

Needs Debian's ``chromium`` and ``chromium-driver``. A missing browser is a failure with the
install command, never a silent skip: CI must not go green without having looked.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from services.launch import free_port, start, stop
from tests.helpers import headless_chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def bookinfo_url() -> Iterator[str]:
    """ratings, details v2, reviews v2 and productpage v2, pointing at each other directly."""
    ports = {name: free_port() for name in ("ratings", "details", "reviews", "productpage")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    plan = [
        ("ratings", {}),
        ("details", {"SERVICE_VERSION": "v2"}),
        ("reviews", {"SERVICE_VERSION": "v2", "RATINGS_URL": urls["ratings"]}),
        (
            "productpage",
            {
                "SERVICE_VERSION": "v2",
                "DETAILS_URL": urls["details"],
                "REVIEWS_URL": urls["reviews"],
                "RATINGS_URL": urls["ratings"],
            },
        ),
    ]
    processes = []
    try:
        for service, env in plan:
            processes.append(start(service, ports[service], env))
        yield urls["productpage"]
    finally:
        stop(*processes)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = headless_chromium()
    try:
        yield driver
    finally:
        driver.quit()


def test_tester_sees_reviews_and_version_banner(bookinfo_url: str, browser: webdriver.Chrome):
    wait = WebDriverWait(browser, 10)
    browser.get(f"{bookinfo_url}/productpage")
    assert browser.find_element(By.ID, "version-badge").text == "v2"
    assert browser.get_cookie("product-page")["value"] == "v2"

    browser.find_element(By.ID, "username").send_keys("tester")
    browser.find_element(By.ID, "password").send_keys("secret")
    browser.find_element(By.ID, "sign-in-button").click()
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "user"), "tester"))

    reviews = browser.find_element(By.ID, "reviews")
    assert reviews.is_displayed()
    assert "Book Reviews" in reviews.text and "Reviewer1" in reviews.text
    stars = browser.find_elements(By.CSS_SELECTOR, "#reviews .stars-black")
    assert len(stars) == 2 and all(star.is_displayed() for star in stars)

    served_by = browser.find_element(By.ID, "served-by")
    assert served_by.is_displayed()
    hops = [hop.text for hop in served_by.find_elements(By.CLASS_NAME, "hop")]
    assert hops == ["productpage-v2", "details-v2", "reviews-v2", "ratings-v1"]
    assert browser.find_element(By.ID, "edition").text == "2nd"

    browser.find_element(By.ID, "logout").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "login-form")))
