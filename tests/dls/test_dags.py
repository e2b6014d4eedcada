"""The DAGs of orchestrator/dls/dags in the .venv-dls Airflow (issue 17): every file parses into the DAGs the
design names, each a single task without schedule that keeps conf's types; and `airflow dags test
orch_ssh2ssh` (in-process, no scheduler) moves a dataset on the simulated site with the key given by
`vault_id`, read from orch's credential store in a temporary ORCH_HOME, never shown in the run's output."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import uuid
from pathlib import Path

import pytest

from orchestrator.credentials import CredentialStore

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv-dls" / "bin"
DAGS = REPO / "orchestrator" / "dls" / "dags"
TRANSFER_DAGS = ["orch_http2ssh", "orch_image_transfer", "orch_ssh2http", "orch_ssh2ssh", "orch_stagein",
                 "orch_stageout"]

pytestmark = pytest.mark.skipif(not (BIN / "airflow").exists(), reason="no .venv-dls (pip install -e '.[dls]')")

_PARSE = """import json
from airflow.models import DagBag
bag = DagBag(dag_folder={folder!r})
print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}},
                  "dags": {{i: {{"native": d.render_template_as_native_obj, "timetable": type(d.timetable).__name__,
                                "tasks": [t.task_id for t in d.tasks]}} for i, d in bag.dags.items()}}}}))
"""


def airflow_env(tmp_path: Path, orch_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VAULT_", "ORCH_VAULT"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", ORCH_HOME=str(orch_home))
    return env


def test_every_dag_file_parses_into_the_designs_dags(tmp_path):
    done = subprocess.run([str(BIN / "python"), "-c", _PARSE.format(folder=str(DAGS))], capture_output=True,
                          text=True, timeout=300, env=airflow_env(tmp_path, tmp_path / "orch"), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    assert set(TRANSFER_DAGS) <= set(found["dags"])
    for dag_id in TRANSFER_DAGS:
        assert found["dags"][dag_id] == {"native": True, "timetable": "NullTimetable", "tasks": ["transfer"]}, dag_id


@pytest.mark.e2e
def test_dags_test_moves_a_dataset_with_a_key_from_orchs_store(sim_site, tmp_path):
    home = tmp_path / "orch"
    name = f"dls-{uuid.uuid4().hex[:6]}"
    public = CredentialStore(home).create(name, user=sim_site["ssh_user"])
    private = CredentialStore(home).private_key(name).decode()
    tag = uuid.uuid4().hex[:8]
    source, target = f"{sim_site['data_dir']}/dag-{tag}", f"{sim_site['work_dir']}/dag-{tag}/set"
    line = shlex.quote(public)
    try:
        for host in ("data", "login"):
            added = sim_site.ssh(host, f"printf '%s\\n' {line} >> ~/.ssh/authorized_keys")
            assert added.returncode == 0, added.stderr
        made = sim_site.ssh("data", f"mkdir -p {source}/sub && printf 'one\\n' > {source}/a && "
                                    f"printf 'two\\n' > {source}/sub/b")
        assert made.returncode == 0, made.stderr
        env = airflow_env(tmp_path, home)
        migrated = subprocess.run([str(BIN / "airflow"), "db", "migrate"], capture_output=True, text=True,
                                  timeout=600, env=env, check=False)
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        conf = {"source": source, "source_host": sim_site["data_host"], "target": target,
                "host": sim_site["login_host"], "port": sim_site["ssh_port"], "login": sim_site["ssh_user"],
                "vault_id": name, "ssh_options": [f"UserKnownHostsFile={sim_site['known_hosts_file']}"]}
        ran = subprocess.run([str(BIN / "airflow"), "dags", "test", "orch_ssh2ssh", "-c", json.dumps(conf)],
                             capture_output=True, text=True, timeout=600, env=env, check=False)
        output = ran.stdout + ran.stderr
        assert ran.returncode == 0, output[-5000:]
        manifest = "\n".join(f"{hashlib.sha256(data).hexdigest()}  {path}"
                             for path, data in [("./a", b"one\n"), ("./sub/b", b"two\n")])
        checksum = hashlib.sha256(manifest.encode()).hexdigest()
        assert checksum in output  # the task's return value, logged by the run
        shown = sim_site.ssh("login", f"cat {target}/a {target}/sub/b")
        assert shown.stdout == "one\ntwo\n", shown.stderr
        # the key's text reached neither the run's output nor its logs
        body = re.sub(r"-----[A-Z ]+-----|\s", "", private)
        logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "airflow").rglob("*.log"))
        assert body[20:80] not in output and body[20:80] not in logs
    finally:
        for host in ("data", "login"):
            sim_site.ssh(host, f"grep -vxF {line} ~/.ssh/authorized_keys > ~/.ak.new; "
                               "cat ~/.ak.new > ~/.ssh/authorized_keys; rm -f ~/.ak.new")
        sim_site.ssh("data", f"rm -rf -- {source}")
        sim_site.ssh("login", f"rm -rf -- {sim_site['work_dir']}/dag-{tag}")
