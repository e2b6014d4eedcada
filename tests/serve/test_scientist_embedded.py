"""A scientist's whole path through `orch serve` on the embedded site (this machine, no SSH: the site's
hosts are local, so a key needs no adding and its check says so): the developer deploys the eFlows4HPC
minimal workflow and exposes it; the scientist, in a real browser (Debian's chromium through Playwright),
makes a key, runs the workflow from the form with their inputs, watches its steps turn green, gets counts
equal to an independent count, and cancels a second run; another user sees none of it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml
from live_server import Server

from orchestrator.api import Orchestrator

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
SITE = ROOT / "sites" / "localhost.yaml"
SAMPLE = ROOT / "workflows" / "wordcount" / "data" / "sample"
EXPOSED = "minimal@localhost@exec_job"


def reference(folder: Path) -> list[str]:
    counter: Counter[str] = Counter()
    for path in sorted(folder.glob("*.txt")):
        counter.update(re.findall(r"[a-z0-9]+", path.read_text(encoding="utf-8", errors="replace").lower()))
    return [f"{w} {c}" for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("scientist-embedded")
    home, results_root = root / "home", root / "results"
    results_root.mkdir()
    inputs = yaml.safe_load(SITE.read_text())
    inputs.update({key: str(root / key) for key in ("work_dir", "image_dir", "data_dir", "build_dir", "results_dir")})
    api = Orchestrator(home)
    deployed = api.deploy("wordcount", str(TOPOLOGY), inputs)
    assert deployed.outcome.ok, deployed.outcome.failures
    api.expose("wordcount", "exec_job", EXPOSED)
    tokens = {"alice": api.create_user("alice"), "bob": api.create_user("bob")}
    api.close()
    server = Server(home, root / "serve.log", "--data-root", str(results_root))
    server.start()
    yield server, tokens, results_root
    server.stop()


def test_a_scientist_runs_the_minimal_workflow_from_the_page(service, browser, tmp_path):
    server, tokens, results_root = service
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server.url + "/")
    page.fill("#token", tokens["alice"])
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")

    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#keys li.key code")
    key_id = page.locator("#keys li.key strong").first.inner_text().strip()
    checked = httpx.post(f"{server.url}/api/v1/ssh_keys/{key_id}/verify", headers=alice, json={"workflow": EXPOSED},
                         timeout=120).json()
    assert checked["ok"] is True and all(v.startswith("local") for v in checked["hosts"].values()), checked

    results = results_root / "alice"
    form = page.locator(f"form.run-form[data-workflow='{EXPOSED}']")
    form.locator("input[name=result_data_path]").fill(str(results))
    form.locator("select[name=ssh_key]").select_option(key_id)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#execution:not([hidden]) .step")
    page.wait_for_function("['done', 'failed', 'cancelled'].includes("
                           "document.getElementById('execution-status').textContent)", timeout=600_000)
    assert page.locator("#execution-status").inner_text() == "done", page.locator("#log").inner_text()[-3000:]
    states = page.locator("#graph .step").evaluate_all("steps => steps.map(s => s.dataset.state)")
    assert states and set(states) == {"done"}, states
    assert (results / "counts.txt").read_text().splitlines() == reference(SAMPLE)
    assert page.locator("#results dd[data-output=result_file]").inner_text() == str(results / "counts.txt")
    first_id = page.locator("#execution-id").inner_text().strip()
    downloaded = httpx.get(f"{server.url}/api/v1/executions/{first_id}/results/result_file", headers=alice, timeout=60)
    assert downloaded.status_code == 200 and downloaded.text.splitlines() == reference(SAMPLE)
    page.screenshot(path=str(tmp_path / "scientist-embedded.png"), full_page=True)

    # a second run, cancelled from the page
    form = page.locator(f"form.run-form[data-workflow='{EXPOSED}']")
    form.locator("input[name=result_data_path]").fill(str(results_root / "alice-second"))
    form.locator("button[type=submit]").click()
    page.wait_for_function(f"document.getElementById('execution-id').textContent !== '{first_id}'")
    page.wait_for_selector("#cancel:not([hidden])")
    page.click("#cancel")
    page.wait_for_function("document.getElementById('execution-status').textContent === 'cancelled'",
                           timeout=300_000)
    page.close()

    bob = {"Authorization": f"Bearer {tokens['bob']}"}
    assert httpx.get(f"{server.url}/api/v1/executions", headers=bob, timeout=30).json() == []
    assert httpx.get(f"{server.url}/api/v1/executions/{first_id}/results", headers=bob, timeout=30).status_code == 404
