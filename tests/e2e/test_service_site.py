"""A scientist's whole path through `orch serve` on the simulated site (real SSH, real Slurm, the
unprivileged cluster user): the developer deploys the minimal workflow and exposes it; the scientist,
in a real browser, makes an SSH key, adds it on the cluster, has the service verify it, runs the workflow
from the form with their own inputs, watches it turn green, gets results that match an independent count,
and cancels a second run; every login of their executions uses their key (the site's key is taken out
of the deployment's reach); another user sees none of it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "serve"))
from live_server import Server  # noqa: E402 - the serve tests' helper

from orchestrator.api import Orchestrator  # noqa: E402

TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
SAMPLE = ROOT / "workflows" / "wordcount" / "data" / "sample"
EXPOSED = "minimal@site@exec_job"
HOSTS = ("login", "data", "builder")  # the site's hosts
COMPUTES = ("environment", "data", "builder")  # the topology's Compute nodes on them

pytestmark = pytest.mark.e2e


def reference(texts: list[str]) -> list[str]:
    counter: Counter[str] = Counter()
    for text in texts:
        counter.update(re.findall(r"[a-z0-9]+", text.lower()))
    return [f"{w} {c}" for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


@pytest.fixture(scope="module")
def service(sim_site, tmp_path_factory):
    root = tmp_path_factory.mktemp("service-site")
    home, results_root = root / "home", root / "results"
    results_root.mkdir()
    copied = subprocess.run(["scp", "-q", "-F", str(sim_site.ssh_config), "-r", str(SAMPLE), "data:/data/"],
                            capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0, copied.stderr
    api = Orchestrator(home)
    deployed = api.deploy("wordcount", str(TOPOLOGY), yaml_inputs(sim_site.directory / "site.yaml"))
    assert deployed.outcome.ok, deployed.outcome.failures
    api.expose("wordcount", "exec_job", EXPOSED)
    tokens = {"alice": api.create_user("alice"), "bob": api.create_user("bob")}
    api.close()
    server = Server(home, root / "serve.log", "--data-root", str(results_root))
    server.start()
    yield server, tokens, results_root
    server.stop()


def yaml_inputs(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def sign_in(page, server, token: str) -> None:
    page.goto(server.url + "/")
    page.fill("#token", token)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")


def test_a_scientist_runs_the_minimal_workflow_with_their_own_key(sim_site, service, browser, tmp_path):
    server, tokens, results_root = service
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    sign_in(page, server, tokens["alice"])

    # a key of their own, for the cluster account
    page.fill("#cluster-user", sim_site["ssh_user"])
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#keys li.key code")
    key_id = page.locator("#keys li.key strong").first.inner_text().strip()
    public_key = page.locator("#keys li.key code").first.inner_text().strip()
    assert public_key.startswith("ssh-ed25519 ")
    checked = httpx.post(f"{server.url}/api/v1/ssh_keys/{key_id}/verify", headers=alice, json={"workflow": EXPOSED},
                         timeout=180).json()
    # not on the cluster yet: every Compute of the site refuses it
    assert checked["ok"] is False and set(checked["hosts"]) == set(COMPUTES), checked
    assert all("Permission denied" in why for why in checked["hosts"].values()), checked
    for host in HOSTS:  # the scientist adds it to their account's authorized_keys on the cluster
        added = sim_site.ssh(host, f"printf '%s\\n' {shlex.quote(public_key)} >> ~/.ssh/authorized_keys")
        assert added.returncode == 0, added.stderr
    checked = httpx.post(f"{server.url}/api/v1/ssh_keys/{key_id}/verify", headers=alice, json={"workflow": EXPOSED},
                         timeout=180).json()
    assert checked["ok"] is True, checked
    # from here on the cluster account accepts alice's key alone: the site's key (the developer's, in the
    # deployment's inputs) is taken out, so an execution that used it anywhere would fail
    kept = {h: sim_site.ssh(h, "cat ~hpcuser/.ssh/authorized_keys", user="root").stdout for h in HOSTS}
    try:
        for host in HOSTS:
            only = sim_site.ssh(host, f"printf '%s\\n' {shlex.quote(public_key)} > ~hpcuser/.ssh/authorized_keys",
                                user="root")
            assert only.returncode == 0, only.stderr
        _run_and_cancel(sim_site, server, tokens, results_root, page, key_id, tmp_path)
    finally:
        for host, text in kept.items():
            sim_site.ssh(host, f"printf '%s' {shlex.quote(text)} > ~hpcuser/.ssh/authorized_keys", user="root")


def _run_and_cancel(sim_site, server, tokens, results_root, page, key_id, tmp_path):
    alice = {"Authorization": f"Bearer {tokens['alice']}"}

    # the run, from the form, with their inputs and their key
    results = results_root / "alice"
    page.reload()
    page.wait_for_selector("#app:not([hidden])")
    form = page.locator(f"form.run-form[data-workflow='{EXPOSED}']")
    form.locator("input[name=dataset]").fill("data:/data/sample")
    form.locator("input[name=result_data_path]").fill(str(results))
    form.locator("select[name=ssh_key]").select_option(key_id)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#execution:not([hidden]) .step")
    page.wait_for_function("document.getElementById('execution-status').textContent !== 'running'"
                           " && document.getElementById('execution-status').textContent !== ''", timeout=900_000)
    assert page.locator("#execution-status").inner_text() == "done", page.locator("#log").inner_text()[-3000:]
    states = page.locator("#graph .step").evaluate_all("steps => steps.map(s => s.dataset.state)")
    assert states and set(states) == {"done"}, states
    texts = [p.read_text() for p in sorted(SAMPLE.glob("*.txt"))]
    assert (results / "counts.txt").read_text().splitlines() == reference(texts)
    assert page.locator("#results dd[data-output=result_file]").inner_text() == str(results / "counts.txt")
    page.screenshot(path=str(tmp_path / "scientist-run.png"), full_page=True)

    # the job ran as the cluster user under Slurm, and every login of the execution used alice's key
    execution_id = page.locator("#execution-id").inner_text().strip()
    execution = httpx.get(f"{server.url}/api/v1/executions/{execution_id}", headers=alice, timeout=30).json()
    assert execution["ssh_key"] == key_id
    job = json.loads(httpx.get(f"{server.url}/api/v1/executions/{execution_id}/results", headers=alice,
                               timeout=30).text)["outputs"]["job_output"]
    job_id = re.search(r"slurm-(\d+)\.out$", job).group(1)
    shown = sim_site.ssh("login", f"scontrol show job {job_id}").stdout
    assert "JobState=COMPLETED" in shown and f"UserId={sim_site['ssh_user']}(" in shown
    # a second run, cancelled from the page
    form = page.locator(f"form.run-form[data-workflow='{EXPOSED}']")
    form.locator("input[name=dataset]").fill("data:/data/sample")
    form.locator("input[name=result_data_path]").fill(str(results_root / "alice-second"))
    form.locator("select[name=ssh_key]").select_option(key_id)
    first_id = execution_id
    form.locator("button[type=submit]").click()
    page.wait_for_function(f"document.getElementById('execution-id').textContent !== '{first_id}'")
    page.wait_for_selector("#cancel:not([hidden])")
    page.click("#cancel")
    page.wait_for_function("document.getElementById('execution-status').textContent === 'cancelled'",
                           timeout=600_000)
    page.close()

    # bob sees none of it
    bob = {"Authorization": f"Bearer {tokens['bob']}"}
    assert httpx.get(f"{server.url}/api/v1/executions", headers=bob, timeout=30).json() == []
    assert httpx.get(f"{server.url}/api/v1/ssh_keys", headers=bob, timeout=30).json() == []
    assert httpx.get(f"{server.url}/api/v1/executions/{first_id}", headers=bob, timeout=30).status_code == 404
    # and a controller path outside the server's data root is refused, naming the input
    outside = httpx.post(f"{server.url}/api/v1/executions", headers=alice, timeout=30,
                         json={"workflow": EXPOSED, "inputs": {"result_data_path": "/etc"}, "ssh_key": key_id})
    assert outside.status_code == 422 and "result_data_path" in outside.text
