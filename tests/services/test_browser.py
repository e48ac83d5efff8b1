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
def bookinfo() -> Iterator[dict[str, str]]:
    """ratings, details v2, reviews v2, and productpage v1 and v2 pointing at them directly;
    the productpage URLs by version."""
    names = ("ratings", "details", "reviews", "productpage-v1", "productpage-v2")
    ports = {name: free_port() for name in names}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    upstreams = {
        "DETAILS_URL": urls["details"],
        "REVIEWS_URL": urls["reviews"],
        "RATINGS_URL": urls["ratings"],
    }
    plan = [
        ("ratings", "ratings", {}),
        ("details", "details", {"SERVICE_VERSION": "v2"}),
        ("reviews", "reviews", {"SERVICE_VERSION": "v2", "RATINGS_URL": urls["ratings"]}),
        ("productpage-v1", "productpage", {"SERVICE_VERSION": "v1", **upstreams}),
        ("productpage-v2", "productpage", {"SERVICE_VERSION": "v2", **upstreams}),
    ]
    processes = []
    try:
        for name, service, env in plan:
            processes.append(start(service, ports[name], env))
        yield {"v1": urls["productpage-v1"], "v2": urls["productpage-v2"]}
    finally:
        stop(*processes)


@pytest.fixture(scope="module")
def bookinfo_url(bookinfo: dict[str, str]) -> str:
    return bookinfo["v2"]


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
    hops = [hop.text for hop in served_by.find_elements(By.CLASS_NAME, "hop-name")]
    assert hops == ["productpage-v2", "details-v2", "reviews-v2", "ratings-v1"]
    assert browser.find_element(By.ID, "edition").text == "2nd"

    browser.find_element(By.ID, "logout").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "login-form")))


def test_both_versions_show_a_readable_badge_and_a_large_served_by_chain(
    bookinfo: dict[str, str], browser: webdriver.Chrome
) -> None:
    """What the room reads: the badge says v1 or v2, as large on v1 as on v2, in the lab's
    version colour (v1 blue, v2 amber, as in Locust's charts); the chain is in large type."""
    seen = {}
    for version, url in bookinfo.items():
        browser.get(f"{url}/productpage")
        badge = browser.find_element(By.ID, "version-badge")
        assert badge.is_displayed() and badge.text == version
        chain = browser.find_element(By.ID, "served-by")
        hops = [h.text for h in chain.find_elements(By.CLASS_NAME, "hop-name")]
        assert hops[0] == f"productpage-{version}"
        seen[version] = (
            badge.value_of_css_property("font-size"),
            badge.value_of_css_property("font-weight"),
            badge.size["height"],
            badge.value_of_css_property("background-color"),
            float(chain.value_of_css_property("font-size").removesuffix("px")),
        )
    (v1_size, v1_weight, v1_height, v1_colour, v1_chain) = seen["v1"]
    (v2_size, v2_weight, v2_height, v2_colour, v2_chain) = seen["v2"]
    assert (v1_size, v1_weight, v1_height) == (v2_size, v2_weight, v2_height)
    assert float(v1_size.removesuffix("px")) >= 24 and int(v1_weight) >= 700
    assert v1_colour == "rgba(37, 99, 235, 1)"  # --v1 #2563eb: blue
    assert v2_colour == "rgba(245, 158, 11, 1)"  # --v2 #f59e0b: amber
    assert v1_chain >= 20 and v2_chain >= 20
