"""Secrets: SSH private keys, passwords, tokens and get_secret values never appear in what orch writes
(logs, events, the store, Ansible's run folders and artifacts, anything under --home), in the
arguments of any process it spawns, or in its messages.

The main test plants known values on the simulated site: an orch credential used as the SSH key of a
host (token_type: orch_credential; its public key authorized on the host), a get_secret value (the
private key of a second credential) as an operation input, and a workflow input named `password`.
It runs deploy and run under `strace -f -e trace=execve` (or, without strace, watching /proc; under CI,
where .ci/run installs strace, a missing strace fails the audit), checks that the secrets really
reached the host and that the store keeps the secret inputs sealed, then greps for each secret
everywhere. The other tests do the same for narrower paths on the controller: input errors, topology
inputs, a crash. Each check that a secret is absent goes with one that it arrived (the playbook wrote
its digest) and is kept sealed (a blob the master key opens to it), so that dropping the input fails.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import secrets as random_secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.credentials import CredentialStore
from orchestrator.credentials.sealed import SEALED, unseal

ROOT = Path(__file__).resolve().parents[2]
HOST = "data"
STRACE = shutil.which("strace")
UNDER_CI = os.environ.get("CI", "").lower() in ("true", "1")


def _seccomp_flag() -> list[str]:
    if not STRACE:
        return []
    probe = subprocess.run([STRACE, "-f", "-qq", "--seccomp-bpf", "-e", "trace=execve", "-o", os.devnull, "true"],
                           capture_output=True, timeout=60, check=False)
    return ["--seccomp-bpf"] if probe.returncode == 0 else []


SECCOMP = _seccomp_flag()


def _load_torture():
    spec = importlib.util.spec_from_file_location("orch_torture", ROOT / "benchmarks" / "torture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


torture = _load_torture()

USE_TOKEN = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Keep the digest of the token
      ansible.builtin.copy:
        dest: "{{ digest_dir }}/token.sha256"
        content: "{{ api_token | hash('sha256') }}\\n"
        mode: "0600"
    - name: Keep the digest of the admin password (a topology input, where the topology gives it)
      ansible.builtin.copy:
        dest: "{{ digest_dir }}/admin_password.sha256"
        content: "{{ admin_password | hash('sha256') }}\\n"
        mode: "0600"
      when: admin_password is defined
"""

USE_PASSWORD = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Hold while the flag file exists (at most 2 minutes)
      ansible.builtin.shell: 'for i in $(seq 1 1200); do [ -e "{{ flag }}" ] || exit 0; sleep 0.1; done'
      when: flag | default('', true) | length > 0  # an empty input arrives as null (Ansible 2.19, !unsafe '')
    - name: Keep the digest of the password
      ansible.builtin.copy:
        dest: "{{ digest_dir }}/password.sha256"
        content: "{{ password | hash('sha256') }}\\n"
        mode: "0600"
"""

TYPES = """\
tosca_definitions_version: tosca_simple_yaml_1_3
interface_types:
  sec.interfaces.Use:
    derived_from: tosca.interfaces.Root
    use:
      description: Use the password.
node_types:
  sec.nodes.App:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      digest_dir: { type: string }
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        create:
          implementation: playbooks/use_token.yaml
          inputs:
            api_token: { get_secret: [ api-token, private_key ] }
            digest_dir: { get_property: [ SELF, digest_dir ] }
      Use:
        type: sec.interfaces.Use
        use:
          implementation: playbooks/use_password.yaml
          inputs:
            password: { get_input: password }
            flag: { get_input: flag }
            digest_dir: { get_property: [ SELF, digest_dir ] }
"""

SITE_TOPOLOGY = TYPES + """\
topology_template:
  inputs:
    data_host: { type: string }
    known_hosts_file: { type: string }
    python_interpreter: { type: string, default: /usr/bin/python3 }
    flag: { type: string, default: "" }
  node_templates:
    data:
      type: orch.nodes.Compute
      properties:
        python_interpreter: { get_input: python_interpreter }
      attributes:
        public_address: { get_input: data_host }
      capabilities:
        endpoint:
          properties:
            port: 22
            known_hosts_file: { get_input: known_hosts_file }
            credential: { user: root, token_type: orch_credential, token: reach-data }
    app:
      type: sec.nodes.App
      properties: { digest_dir: /root }
      requirements: [ { host: data } ]
  workflows:
    use:
      inputs:
        password: { type: string, required: true }
      steps:
        use_it:
          target: app
          activities:
            - call_operation: Use.use
"""

LOCAL_TOPOLOGY = TYPES.replace("tosca.nodes.SoftwareComponent", "tosca.nodes.Root") + """\
topology_template:
  inputs:
    digest_dir: { type: string }
    flag: { type: string, default: "" }
    admin_password: { type: string, default: "not-a-secret" }
  node_templates:
    app:
      type: sec.nodes.App
      properties: { digest_dir: { get_input: digest_dir } }
      interfaces:
        Standard:
          create:
            inputs:
              admin_password: { get_input: admin_password }
  workflows:
    use:
      inputs:
        password: { type: string, required: true }
        flag: { type: string, required: false, default: "" }
      steps:
        use_it:
          target: app
          activities:
            - call_operation: Use.use
"""


def write_topology(directory: Path, text: str) -> Path:
    (directory / "playbooks").mkdir(parents=True, exist_ok=True)
    (directory / "playbooks" / "use_token.yaml").write_text(USE_TOKEN)
    (directory / "playbooks" / "use_password.yaml").write_text(USE_PASSWORD)
    path = directory / "secrets.yaml"
    path.write_text(text)
    return path


class Recorder:
    """Runs orch commands, keeping their output and the argv of every process they spawn."""

    def __init__(self, home: Path, folder: Path):
        if not STRACE and UNDER_CI:
            pytest.fail("strace is not installed: under CI the secrets audit must trace every execve "
                        "(.ci/run installs strace)", pytrace=False)
        self.home = home
        self.folder = folder
        self.outputs: list[str] = []
        self.traces: list[Path] = []
        self.watched_argv: list[str] = []

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "orchestrator.cli", "--home", str(self.home), *args]
        if STRACE:
            trace = self.folder / f"execve-{len(self.traces)}.txt"
            self.traces.append(trace)
            # --seccomp-bpf: only execve stops the traced processes (else every system call does)
            command = [STRACE, "-f", "-qq", *SECCOMP, "-e", "trace=execve", "-s", "65536", "-o", str(trace), *command]
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                                    stdin=subprocess.DEVNULL, check=False)
        else:  # without strace: the command lines of its descendants, sampled from /proc
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                       stdin=subprocess.DEVNULL)
            watcher = torture.ProcessWatcher(process.pid, interval=0.02)
            stdout, stderr = process.communicate(timeout=timeout)
            watcher.stop()
            self.watched_argv += [seen.cmdline for seen in watcher.seen.values()]
            result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        self.outputs.append(f"$ {' '.join(args)}\n{result.stdout}\n{result.stderr}")
        return result

    def argv_text(self) -> str:
        return "\n".join([t.read_text(errors="replace") for t in self.traces if t.exists()] + self.watched_argv)


def needles(pem: str) -> list[str]:
    """What of a private key must never show: each line of its base64 body (so a key that was cut,
    quoted or JSON-escaped is found too), and the whole body in one piece."""
    body = [line.strip() for line in pem.strip().splitlines() if line.strip() and "-----" not in line]
    return [line for line in body if len(line) >= 16] + ["".join(body)]


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]


def db_dump(home: Path) -> str:
    db = home / "orch.db"
    if not db.exists():
        return ""
    conn = sqlite3.connect(db, timeout=30)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def find(secrets: dict[str, list[str]], places: dict[str, bytes]) -> list[str]:
    hits = []
    for what, values in secrets.items():
        for value in values:
            for place, content in places.items():
                if value.encode() in content:
                    hits.append(f"{what} in {place}")
    return sorted(set(hits))


def everything_orch_wrote(home: Path, recorder: Recorder, since: float) -> dict[str, bytes]:
    places = {f"file {p}": p.read_bytes() for p in files_under(home)}
    places["the store (SQL dump)"] = db_dump(home).encode()
    places["stdout/stderr of orch"] = "\n".join(recorder.outputs).encode()
    places["argv of every process orch spawned"] = recorder.argv_text().encode()
    ansible_tmp = Path.home() / ".ansible"
    if ansible_tmp.is_dir():  # the controller's Ansible temp files written during these commands
        for p in files_under(ansible_tmp):
            try:
                if p.stat().st_mtime >= since:
                    places[f"file {p}"] = p.read_bytes()
            except OSError:
                continue
    return places


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def stored_inputs(home: Path, query: str, *params: str) -> dict:
    """The inputs column of one row of the store, as JSON."""
    conn = sqlite3.connect(home / "orch.db", timeout=30)
    try:
        rows = conn.execute(query, params).fetchall()
    finally:
        conn.close()
    assert len(rows) == 1, rows
    return json.loads(rows[0][0])


def deployment_inputs(home: Path, name: str) -> dict:
    return stored_inputs(home, "SELECT inputs FROM deployments WHERE name=?", name)


def execution_inputs(home: Path, execution: str) -> dict:
    return stored_inputs(home, "SELECT inputs FROM executions WHERE id=?", execution)


def latest_execution(home: Path, name: str, workflow: str) -> str:
    conn = sqlite3.connect(home / "orch.db", timeout=30)
    try:
        row = conn.execute("SELECT id FROM executions WHERE deployment=? AND workflow=? ORDER BY started DESC LIMIT 1",
                           (name, workflow)).fetchone()
    finally:
        conn.close()
    assert row, f"no execution of {workflow} on {name} in the store"
    return row[0]


def assert_sealed(home: Path, stored: dict, name: str, value: str) -> None:
    """The store keeps `name` as a sealed blob (not the value in clear, not nothing) that the master key
    opens to `value`."""
    blob = stored.get(name)
    assert isinstance(blob, dict) and set(blob) == {SEALED} and isinstance(blob[SEALED], str) and blob[SEALED], (
        f"input {name!r} is not a sealed blob in the store: {blob!r}")
    assert value not in json.dumps(stored)
    assert unseal(home, {name: blob}) == {name: value}, f"the sealed {name!r} does not open to the value given"


def orch(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL,
                          check=False)


# -- the simulated site ------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_planted_secrets_appear_nowhere_orch_writes_or_spawns(sim_site, tmp_path):
    since = time.time() - 1
    home = tmp_path / "home"
    recorder = Recorder(home, tmp_path)
    made = recorder.run("credentials", "create", "reach-data", "--user", "root")
    assert made.returncode == 0, made.stderr
    public_key = made.stdout.strip()
    assert recorder.run("credentials", "create", "api-token").returncode == 0
    store = CredentialStore(home)
    ssh_pem = store.private_key("reach-data").decode()
    token_pem = store.private_key("api-token").decode()
    password = "pw-" + random_secrets.token_hex(16)

    # the harness, as root, authorizes the credential for root (the site's sshd reads ~/.ssh/authorized_keys)
    authorized = subprocess.run(["ssh", "-F", str(sim_site.ssh_config), f"root@{HOST}",
                                 "cat >> /root/.ssh/authorized_keys"], input=public_key + "\n",
                                capture_output=True, text=True, timeout=60, check=False)
    assert authorized.returncode == 0, authorized.stderr
    try:
        topology = write_topology(tmp_path / "topology", SITE_TOPOLOGY)
        site_file = sim_site.directory / "site.yaml"
        deployed = recorder.run("deploy", str(topology), "-n", "sec", "-i", str(site_file))
        assert deployed.returncode == 0, deployed.stderr
        run_inputs = tmp_path / "run-inputs.yaml"  # not on orch's command line: a file of the caller's
        run_inputs.write_text(f"password: {password}\n")
        ran = recorder.run("run", "sec", "-w", "use", "-i", str(run_inputs))
        assert ran.returncode == 0, ran.stderr
        for args in (("logs", "sec"), ("executions", "sec", "--json"), ("status", "sec", "--json"),
                     ("outputs", "sec"), ("list",), ("credentials", "list")):
            assert recorder.run(*args).returncode == 0

        # the secrets did reach the host: the test looks where they could have leaked on the way
        digests = sim_site.ssh(HOST, "cat /root/token.sha256 /root/password.sha256", user="root").stdout.split()
        assert digests == [hashlib.sha256(token_pem.encode()).hexdigest(),
                           hashlib.sha256(password.encode()).hexdigest()], "the secrets did not arrive as planted"

        assert_sealed(home, execution_inputs(home, latest_execution(home, "sec", "use")), "password", password)

        planted = {"the SSH key (orch credential reach-data)": needles(ssh_pem),
                   "the get_secret value (api-token's private key)": needles(token_pem),
                   "the workflow input password": [password],
                   "a private key header": ["PRIVATE KEY-----"]}
        places = everything_orch_wrote(home, recorder, since)
        assert len(places) > 3
        # the recorder did see orch's children, down to the ssh that reached the host (else "no hit in any
        # argv" would prove nothing)
        argv = recorder.argv_text()
        assert "orchestrator" in argv and "ansible" in argv, argv[:2000]
        if STRACE:
            assert re.search(r'execve\("[^"]*/ssh"', argv), argv[:2000]
        hits = find(planted, places)
        assert not hits, "secrets found:\n" + "\n".join(hits)
        assert recorder.run("undeploy", "sec").returncode == 0
    finally:
        cleanup = ("sed -i '/orch:reach-data/d' /root/.ssh/authorized_keys; "
                   "rm -f /root/token.sha256 /root/password.sha256")
        subprocess.run(["ssh", "-F", str(sim_site.ssh_config), f"root@{HOST}", cleanup], capture_output=True,
                       timeout=60, check=False)


# -- the controller: narrower paths -------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path):
    home = tmp_path / "home"
    digest_dir = tmp_path / "digests"
    digest_dir.mkdir()
    topology = write_topology(tmp_path / "t", LOCAL_TOPOLOGY)
    assert orch(home, "credentials", "create", "api-token").returncode == 0
    return home, topology, digest_dir


def deploy_local(home: Path, topology: Path, digest_dir: Path, *extra: str) -> None:
    result = orch(home, "deploy", str(topology), "-n", "sec", "--set", f"digest_dir={digest_dir}", *extra)
    assert result.returncode == 0, result.stderr


def test_a_run_on_the_controller_leaves_no_secret(local, tmp_path):
    home, topology, digest_dir = local
    deploy_local(home, topology, digest_dir)
    password = "pw-" + random_secrets.token_hex(24)
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(f"password: {password}\n")
    recorder = Recorder(home, tmp_path)
    ran = recorder.run("run", "sec", "-w", "use", "-i", str(inputs))
    assert ran.returncode == 0, ran.stderr
    assert (digest_dir / "password.sha256").read_text().strip() == digest(password)
    assert_sealed(home, execution_inputs(home, latest_execution(home, "sec", "use")), "password", password)
    for args in (("logs", "sec"), ("executions", "sec", "--json"), ("outputs", "sec")):
        assert recorder.run(*args).returncode == 0
    # the recorder did see orch's children (else "no hit in any argv" would prove nothing)
    argv = recorder.argv_text()
    assert "orchestrator" in argv and "ansible" in argv, argv[:2000]
    token_pem = CredentialStore(home).private_key("api-token").decode()
    hits = find({"password": [password], "get_secret value": needles(token_pem)},
                everything_orch_wrote(home, recorder, time.time() - 600))
    assert not hits, hits


def test_a_secret_input_that_breaks_a_constraint_is_not_echoed(local, tmp_path):
    home, _, digest_dir = local
    constrained = LOCAL_TOPOLOGY.replace("password: { type: string, required: true }",
                                         "password: { type: string, required: true,"
                                         " constraints: [ { min_length: 40 } ] }")
    assert constrained != LOCAL_TOPOLOGY
    deploy_local(home, write_topology(tmp_path / "constrained", constrained), digest_dir)
    password = "short-" + random_secrets.token_hex(4)  # min_length 40 refuses it
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(f"password: {password}\n")
    refused = orch(home, "run", "sec", "-w", "use", "-i", str(inputs))
    assert refused.returncode == 2, refused.stderr
    assert "password" in refused.stderr and "min_length" in refused.stderr, refused.stderr
    assert password not in refused.stderr + refused.stdout
    # refused before anything ran or was kept: no digest, no execution holding it
    assert not (digest_dir / "password.sha256").exists()
    places = {f"file {p}": p.read_bytes() for p in files_under(home)}
    places["the store (SQL dump)"] = db_dump(home).encode()
    assert not find({"password": [password]}, places)


def test_a_secret_topology_input_is_not_kept_in_clear_in_the_store(local, tmp_path):
    home, topology, digest_dir = local
    password = "admin-" + random_secrets.token_hex(16)
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(f"admin_password: {password}\n")
    deploy_local(home, topology, digest_dir, "-i", str(inputs))
    # it reached the playbook, and the store keeps it sealed
    assert (digest_dir / "admin_password.sha256").read_text().strip() == digest(password)
    assert_sealed(home, deployment_inputs(home, "sec"), "admin_password", password)
    places = {f"file {p}": p.read_bytes() for p in files_under(home)}
    places["the store (SQL dump)"] = db_dump(home).encode()
    assert not find({"admin_password": [password]}, places)
    # and undeploy, which needs the inputs again, opens it without asking
    undeployed = orch(home, "undeploy", "sec")
    assert undeployed.returncode == 0, undeployed.stderr


def _run_killed_in_use(home: Path, password_file: Path, flag: Path, log: Path) -> str:
    flag.write_text("hold\n")
    command = torture.Orch(home, ["run", "sec", "-w", "use", "-i", str(password_file), "--set", f"flag={flag}"], log)
    try:
        def inside():
            conn = sqlite3.connect(home / "orch.db", timeout=30)
            try:
                return conn.execute("SELECT 1 FROM operation_runs WHERE step_id LIKE 'use_it%' AND status='started'"
                                    ).fetchone() is not None
            finally:
                conn.close()
        deadline = time.monotonic() + 120
        while not inside():
            assert command.process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the operation never started"
            time.sleep(0.05)
        time.sleep(1.0)  # inside its held task
    finally:
        command.kill()
        flag.unlink(missing_ok=True)
        torture.reap(command.watcher.survivors())
    execution = torture._latest_execution(home, "use", "sec")
    assert execution
    return execution


def test_no_secret_left_on_disk_after_a_crash_and_a_resume(local, tmp_path):
    home, topology, digest_dir = local
    deploy_local(home, topology, digest_dir)
    password = "pw-" + random_secrets.token_hex(24)
    password_file = tmp_path / "inputs.yaml"
    password_file.write_text(f"password: {password}\n")
    execution = _run_killed_in_use(home, password_file, tmp_path / "flag", tmp_path / "orch.log")
    assert_sealed(home, execution_inputs(home, execution), "password", password)  # kept while killed
    assert not (digest_dir / "password.sha256").exists()  # killed before the digest task
    resumed = orch(home, "run", "sec", "--resume", execution, "-i", str(password_file))
    assert resumed.returncode == 0, resumed.stderr
    assert (digest_dir / "password.sha256").read_text().strip() == digest(password)
    assert_sealed(home, execution_inputs(home, execution), "password", password)
    places = {f"file {p}": p.read_bytes() for p in files_under(home)}
    places["the store (SQL dump)"] = db_dump(home).encode()
    hits = find({"password": [password]}, places)
    assert not hits, hits


def test_resuming_a_run_does_not_replay_the_redaction_placeholder_as_the_password(local, tmp_path):
    home, topology, digest_dir = local
    deploy_local(home, topology, digest_dir)
    password_file = tmp_path / "inputs.yaml"
    password_file.write_text(f"password: {'x' * 48}\n")
    execution = _run_killed_in_use(home, password_file, tmp_path / "flag", tmp_path / "orch.log")
    (digest_dir / "password.sha256").unlink(missing_ok=True)
    resumed = orch(home, "run", "sec", "--resume", execution)  # the password not given again
    # the resume takes the sealed password from the store (not its placeholder, not nothing)
    assert resumed.returncode == 0, resumed.stderr
    got = (digest_dir / "password.sha256").read_text().strip()
    assert got != digest("<redacted>"), "the operation ran with password '<redacted>'"
    assert got == digest("x" * 48)
