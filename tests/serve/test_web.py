"""The web page in a real headless browser (Debian's chromium, driven by Playwright): a scientist signs in
with their token, makes an SSH key, runs the exposed workflow from the form generated from its inputs'
schema, watches its steps turn green, sees the results; another user sees none of it. A screenshot of
the finished execution is kept in the test's output folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from live_server import Server

from orchestrator.api import Orchestrator

JOBS = Path(__file__).resolve().parents[1] / "integration" / "data" / "jobs.yaml"
EXPOSED = "jobs@local@exec_job"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    home, out = root / "home", root / "out"
    out.mkdir()
    api = Orchestrator(home)
    assert api.deploy("jobs", str(JOBS), {"out_dir": str(out)}).outcome.ok
    api.expose("jobs", "exec_job", EXPOSED)
    tokens = {"alice": api.create_user("alice"), "bob": api.create_user("bob")}
    api.close()
    server = Server(home, root / "serve.log")
    server.start()
    yield server, tokens, out
    server.stop()


def sign_in(page, server, token: str) -> None:
    page.goto(server.url + "/")
    page.fill("#token", token)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")


def test_a_run_from_the_form_turns_green_and_shows_its_results(browser, served, tmp_path):
    server, tokens, out = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, server, tokens["alice"])
    # the form is generated from the inputs' schema: a required text field, a number, a checkbox
    form = page.locator(f"form.run-form[data-workflow='{EXPOSED}']")
    assert form.locator("input[name=message]").get_attribute("required") is not None
    assert form.locator("input[name=sleep_a]").get_attribute("type") == "number"
    assert form.locator("input[name=fail_b]").get_attribute("type") == "checkbox"

    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#keys li.key code")
    assert page.locator("#keys li.key code").first.inner_text().startswith("ssh-ed25519 ")
    assert page.locator("#key-hint").is_visible()

    form = page.locator(f"form.run-form[data-workflow='{EXPOSED}']")
    form.locator("input[name=message]").fill("typed in a browser")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#execution:not([hidden]) .step")
    page.wait_for_function("document.getElementById('execution-status').textContent === 'done'", timeout=180_000)
    states = page.locator("#graph .step").evaluate_all("steps => steps.map(s => s.dataset.state)")
    assert states and set(states) == {"done"}, states
    assert "step state-done" in page.locator("#graph .step").first.get_attribute("class")
    assert page.locator("#results dd[data-output=b_file]").inner_text() == str(out / "b")
    assert (out / "b").read_text() == "typed in a browser\n"
    assert "workflow exec_job done" in page.locator("#log").inner_text()
    page.screenshot(path=str(tmp_path / "execution.png"), full_page=True)
    assert (tmp_path / "execution.png").stat().st_size > 10_000
    page.close()

    other = browser.new_page()
    sign_in(other, server, tokens["bob"])
    other.wait_for_timeout(500)
    assert other.locator("#executions li").count() == 0
    assert other.locator("#keys li").count() == 0
    other.close()


def test_a_wrong_token_is_refused_on_the_page(browser, served):
    server, _, _ = served
    page = browser.new_page()
    page.goto(server.url + "/")
    page.fill("#token", "not-a-token")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#sign-in-error:not(:empty)")
    assert "Sign in failed" in page.locator("#sign-in-error").inner_text()
    assert page.locator("#app").is_hidden()
    page.close()
