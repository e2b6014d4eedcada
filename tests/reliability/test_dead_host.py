"""Dead hosts and retries.

A host of the simulated site dies (its PID 1, the sshd, killed) while an operation runs on it: the
operation fails as unreachable, is retried with backoff as the topology's orch.policies.Retry says,
the deploy then fails (exit 1) naming the unreachable host, and once the host is back (`sim.up`
restarts a crashed host) `orch deploy --resume` succeeds.

A failing task is not retried by default (it runs once), but is when the operation says `retries: N`
(with `retry_delay`), or the topology's policy says `failure_retries`.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import sim
from orchestrator.sim.account import CLUSTER_USER

ROOT = Path(__file__).resolve().parents[2]

HOST = "builder"  # no Slurm on it: killing it disturbs nothing else of the site
MARKER = f"{CLUSTER_USER.home}/orch-dead-host-marker"  # orch logs in as the site's cluster user

SLOW_PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Mark the start on the host
      ansible.builtin.shell: 'echo "{{ NODE }}" >> "{{ marker }}"'
    - name: Work for a while
      ansible.builtin.command: 'sleep {{ seconds }}'
"""

DEAD_HOST_TOPOLOGY = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  rel.nodes.Slow:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      marker: { type: string }
      seconds: { type: integer }
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        create:
          implementation: playbooks/slow.yaml
          inputs:
            marker: { get_property: [ SELF, marker ] }
            seconds: { get_property: [ SELF, seconds ] }
topology_template:
  inputs:
    builder_host: { type: string }
    ssh_user: { type: string }
    ssh_port: { type: integer, default: 22 }
    ssh_key_file: { type: string }
    known_hosts_file: { type: string }
    python_interpreter: { type: string, default: /usr/bin/python3 }
    seconds: { type: integer, default: 6 }
  node_templates:
    builder:
      type: orch.nodes.Compute
      properties:
        python_interpreter: { get_input: python_interpreter }
      attributes:
        public_address: { get_input: builder_host }
      capabilities:
        endpoint:
          properties:
            port: { get_input: ssh_port }
            known_hosts_file: { get_input: known_hosts_file }
            credential:
              user: { get_input: ssh_user }
              token_type: private_key
              token: { get_input: ssh_key_file }
    slow:
      type: rel.nodes.Slow
      properties:
        marker: MARKER_PATH
        seconds: { get_input: seconds }
      requirements: [ { host: builder } ]
  policies:
    - retry:
        type: orch.policies.Retry
        properties: { unreachable_retries: 2, delay: 1.0 }
"""

FAILING_PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Count the attempt
      ansible.builtin.shell: 'echo "{{ NODE }}" >> "{{ counter }}"'
    - name: Fail on purpose
      ansible.builtin.fail: { msg: "broken on purpose" }
"""


def failing_topology(directory: Path, operation_keys: str = "", policy: str = "", on_template: bool = False) -> Path:
    """One host-less node whose create counts its attempt in a file, then fails. `operation_keys` (e.g.
    "retries: 2") go on the create operation of the node's type, or of the node template itself."""
    (directory / "playbooks").mkdir(parents=True, exist_ok=True)
    (directory / "playbooks" / "fail.yaml").write_text(FAILING_PLAYBOOK)
    keys = "".join(f"\n          {line.strip()}" for line in operation_keys.splitlines() if line.strip())
    create = ("create:\n          implementation: playbooks/fail.yaml\n"
              "          inputs: { counter: { get_input: counter } }" + keys)
    type_create = create if not on_template else "create: playbooks/fail.yaml"
    template_interfaces = "" if not on_template else (
        "      interfaces:\n        Standard:\n          " + create.replace("\n          ", "\n            "))
    text = f"""\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  rel.nodes.Flaky:
    derived_from: tosca.nodes.Root
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        {type_create}
topology_template:
  inputs:
    counter: {{ type: string }}
  node_templates:
    flaky:
      type: rel.nodes.Flaky
{template_interfaces}
{policy}
"""
    path = directory / "topology.yaml"
    path.write_text(text)
    return path


def orch(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """One orch command; `timeout` is a hang detector (it fails the test with a message), not a speed limit."""
    try:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
        raise AssertionError(f"orch {' '.join(args)} did not finish in {timeout:g} s:\n{output[-3000:]}") from None


def runs_of(home: Path, step_id: str) -> list[dict]:
    conn = sqlite3.connect(home / "orch.db", timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM operation_runs WHERE step_id=? ORDER BY id", (step_id,))]
    finally:
        conn.close()


def retry_lines(home: Path, name: str) -> list[str]:
    logs = orch(home, "logs", name)
    assert logs.returncode == 0, logs.stderr
    return [line for line in logs.stdout.splitlines() if line.split()[1:2] == ["retry"]]


# -- failing tasks (on the controller: no site needed) ----------------------------------------------------------


def test_a_failing_task_is_not_retried_by_default(tmp_path):
    home, counter = tmp_path / "home", tmp_path / "counter"
    topology = failing_topology(tmp_path / "t")
    deployed = orch(home, "deploy", str(topology), "-n", "flaky", "--set", f"counter={counter}")
    assert deployed.returncode == 1, deployed.stderr
    assert "broken on purpose" in deployed.stderr and "Traceback" not in deployed.stderr
    assert counter.read_text().splitlines() == ["flaky"], "a failing task ran more than once"
    assert retry_lines(home, "flaky") == []
    assert [r["status"] for r in runs_of(home, "flaky.create")] == ["failed"]


def test_a_failing_task_is_retried_when_the_operation_sets_retries(tmp_path):
    home, counter = tmp_path / "home", tmp_path / "counter"
    topology = failing_topology(tmp_path / "t", operation_keys="retries: 2\nretry_delay: 1")
    deployed = orch(home, "deploy", str(topology), "-n", "flaky", "--set", f"counter={counter}")
    assert deployed.returncode == 1, deployed.stderr
    assert counter.read_text().splitlines() == ["flaky"] * 3, "retries: 2 means three runs"
    assert len(retry_lines(home, "flaky")) == 2
    runs = runs_of(home, "flaky.create")
    assert [r["status"] for r in runs] == ["failed"] * 3
    # backoff: retry_delay before the first retry, doubled before the second
    first_gap = runs[1]["started"] - runs[0]["ended"]
    second_gap = runs[2]["started"] - runs[1]["ended"]
    assert first_gap >= 0.9 and second_gap >= 1.9, (first_gap, second_gap)
    assert "broken on purpose" in deployed.stderr


def test_a_failing_task_is_retried_as_the_topology_policy_says(tmp_path):
    home, counter = tmp_path / "home", tmp_path / "counter"
    policy = ("  policies:\n    - retry:\n        type: orch.policies.Retry\n"
              "        properties: { failure_retries: 1, delay: 0.5 }")
    topology = failing_topology(tmp_path / "t", policy=policy)
    deployed = orch(home, "deploy", str(topology), "-n", "flaky", "--set", f"counter={counter}")
    assert deployed.returncode == 1, deployed.stderr
    assert counter.read_text().splitlines() == ["flaky"] * 2
    assert len(retry_lines(home, "flaky")) == 1


def test_the_operation_retries_win_over_the_policy(tmp_path):
    home, counter = tmp_path / "home", tmp_path / "counter"
    policy = ("  policies:\n    - retry:\n        type: orch.policies.Retry\n"
              "        properties: { failure_retries: 3, delay: 0.2 }")
    topology = failing_topology(tmp_path / "t", operation_keys="retries: 0", policy=policy)
    deployed = orch(home, "deploy", str(topology), "-n", "flaky", "--set", f"counter={counter}")
    assert deployed.returncode == 1, deployed.stderr
    assert counter.read_text().splitlines() == ["flaky"]


def test_retries_on_an_operation_of_a_node_template(tmp_path):
    home, counter = tmp_path / "home", tmp_path / "counter"
    topology = failing_topology(tmp_path / "t", operation_keys="retries: 1\nretry_delay: 0.5", on_template=True)
    deployed = orch(home, "deploy", str(topology), "-n", "flaky", "--set", f"counter={counter}")
    assert deployed.returncode == 1, deployed.stderr
    assert counter.read_text().splitlines() == ["flaky"] * 2


def test_retry_policy_delay_given_as_an_integer(tmp_path):
    policy = ("  policies:\n    - retry:\n        type: orch.policies.Retry\n"
              "        properties: { failure_retries: 1, delay: 1 }")
    topology = failing_topology(tmp_path / "t", policy=policy)
    checked = orch(tmp_path / "home", "validate", str(topology), "--set", "counter=x")
    assert checked.returncode == 0, checked.stdout + checked.stderr  # `delay: 1` is a valid float
    assert "Traceback" not in checked.stderr
    # and the policy acts with it: one retry, one second after the failed attempt
    home, counter = tmp_path / "home", tmp_path / "counter"
    deployed = orch(home, "deploy", str(topology), "-n", "flaky", "--set", f"counter={counter}")
    assert deployed.returncode == 1, deployed.stderr
    assert counter.read_text().splitlines() == ["flaky"] * 2
    assert len(retry_lines(home, "flaky")) == 1
    runs = runs_of(home, "flaky.create")
    assert [r["status"] for r in runs] == ["failed"] * 2
    assert runs[1]["started"] - runs[0]["ended"] >= 0.9, runs  # the delay was waited, not read as 0


# -- a host that dies (simulated site) ---------------------------------------------------------------------------


@pytest.fixture
def dead_host_topology(tmp_path) -> Path:
    (tmp_path / "t" / "playbooks").mkdir(parents=True)
    (tmp_path / "t" / "playbooks" / "slow.yaml").write_text(SLOW_PLAYBOOK)
    path = tmp_path / "t" / "dead-host.yaml"
    path.write_text(DEAD_HOST_TOPOLOGY.replace("MARKER_PATH", MARKER))
    return path


def host_file(site, host: str, path: str) -> Path:
    """A file of a host's own filesystem, seen from this machine (/proc/PID/root)."""
    pid = sim.host_pid(site.name, host, site.directory)
    assert pid, f"host {host} is not running"
    return Path(f"/proc/{pid}/root{path}")


@pytest.mark.e2e
def test_a_host_that_dies_during_an_operation(sim_site, dead_host_topology, tmp_path):
    home = tmp_path / "home"
    site_file = sim_site.directory / "site.yaml"
    hosts = tuple(sim.status(sim_site.name, sim_site.directory)["hosts"])  # up() with fewer would remove some
    assert HOST in hosts
    marker = host_file(sim_site, HOST, MARKER)
    try:
        marker.unlink()
    except FileNotFoundError:
        pass
    log = tmp_path / "deploy.log"
    with open(log, "wb") as out:
        deploy = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "--home", str(home), "deploy",
                                   str(dead_host_topology), "-n", "dead", "-i", str(site_file)],
                                  stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():  # the operation is inside its long task on the host
            assert deploy.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the operation never started on the host"
            time.sleep(0.1)
        time.sleep(0.5)
        pid = sim.host_pid(sim_site.name, HOST, sim_site.directory)
        os.kill(pid, signal.SIGKILL)  # the host's PID 1: the whole host goes
        rc = deploy.wait(timeout=240)
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait()
    output = log.read_text()
    try:
        assert rc == 1, output
        assert "Traceback" not in output
        assert "unreachable" in output.lower(), output
        assert "slow" in output and HOST in output, output

        retries = retry_lines(home, "dead")
        assert len(retries) == 2, retries  # unreachable_retries: 2
        assert all("unreachable" in line.lower() for line in retries), retries
        runs = runs_of(home, "slow.create")
        assert [r["status"] for r in runs] == ["failed"] * 3, runs
        assert all("unreachable" in (r["error"] or "").lower() for r in runs), [r["error"] for r in runs]
        gaps = [runs[i + 1]["started"] - runs[i]["ended"] for i in range(2)]
        assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # delay 1, doubled
        status = orch(home, "status", "dead", "--json")
        assert '"failed"' in status.stdout, status.stdout
    finally:
        # the host comes back (up restarts a crashed host), whatever the assertions said
        sim.up(sim_site.name, hosts, sim_site.directory)

    resumed = orch(home, "deploy", "--resume", "dead")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert host_file(sim_site, HOST, MARKER).read_text().split()[-1:] == ["slow"]
    status = orch(home, "status", "dead", "--json")
    assert '"deployed"' in status.stdout
    assert orch(home, "undeploy", "dead").returncode == 0
