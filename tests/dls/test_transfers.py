"""orchestrator/dls/transfers.py against the simulated site (issue 17), run as the DAGs run it but without
Airflow: `.venv-dls/bin/python -m orchestrator.dls.transfers KIND` with a DAG's conf on stdin (paramiko is in
.venv-dls only). The hosts are reached as the unprivileged cluster user with the site's key file and known
hosts, as orch reaches them; HTTP ends are loopback servers of the test itself.

The checksums expected are computed here from the bytes the test wrote, not by running the manifest command:
sha256 of every file, lines `<sha256>  ./<path>` sorted by path bytes, the sha256 of their text joined by
newlines (the embedded mover's `checksum`)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DLS_PYTHON = REPO / ".venv-dls" / "bin" / "python"
# a name a shell would run if it ever reached one unquoted (it would leave a file orch-dls-pwned behind)
HOSTILE = "x $(touch orch-dls-pwned) `touch orch-dls-pwned`;'\" & |*"

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not DLS_PYTHON.exists(), reason="no .venv-dls (pip install -e '.[dls]' there)")]


def transfer(kind: str, conf: dict, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DLS_PYTHON), "-m", "orchestrator.dls.transfers", kind], input=json.dumps(conf),
                          capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
                          env={**os.environ, **(env or {})})


def expected(files: dict[str, bytes]) -> tuple[int, str]:
    """(files, checksum) of a dataset as the embedded mover reports it, from its files' bytes."""
    lines = sorted((("./" + name).encode(), hashlib.sha256(data).hexdigest()) for name, data in files.items())
    text = b"\n".join(digest.encode() + b"  " + name for name, digest in lines)
    return len(lines), hashlib.sha256(text).hexdigest()


def host_conf(sim_site, host: str, prefix: str = "") -> dict:
    return {f"{prefix}host": sim_site[f"{host}_host"], f"{prefix}port": str(sim_site["ssh_port"]),
            f"{prefix}login": sim_site["ssh_user"], f"{prefix}key_file": sim_site["ssh_key_file"]}


def ssh_options(sim_site) -> list[str]:
    return [f"UserKnownHostsFile={sim_site['known_hosts_file']}", "StrictHostKeyChecking=yes"]


def put_files(sim_site, host: str, folder: str, files: dict[str, bytes], executable: tuple[str, ...] = ()) -> None:
    """Write files under folder on host (as the cluster user), through a tar on stdin: names stay data."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o700 if name in executable else 0o600
            tar.addfile(info, io.BytesIO(data))
    done = subprocess.run(["ssh", "-F", str(sim_site.ssh_config), host,
                           f"mkdir -p -- {shlex.quote(folder)} && tar -xf - -C {shlex.quote(folder)}"],
                          input=buffer.getvalue(), capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


_LISTING = """import hashlib, json, os, sys
root = sys.argv[1]
out = {}
for top, dirs, files in os.walk(root):
    for name in dirs + files:
        path = os.path.join(top, name)
        key = "./" + os.path.relpath(path, root)
        mode = format(os.lstat(path).st_mode & 0o7777, "o")
        out[key] = [mode, "-" if name in dirs else hashlib.sha256(open(path, "rb").read()).hexdigest()]
print(json.dumps(out))
"""


def listing(sim_site, host: str, folder: str) -> dict[str, tuple[str, str]]:
    """{./path: (mode, sha256 or "-" for a folder)} of everything under folder on host."""
    shown = sim_site.ssh(host, f"python3 -c {shlex.quote(_LISTING)} {shlex.quote(folder)}")
    assert shown.returncode == 0, shown.stderr
    return {name: tuple(value) for name, value in json.loads(shown.stdout).items()}


class _Files(http.server.BaseHTTPRequestHandler):
    store: dict[str, bytes]

    def do_GET(self) -> None:
        data = self.store.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self.store[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A loopback HTTP server: GET serves the dict, PUT stores into it; (its base URL, the dict)."""
    store: dict[str, bytes] = {}
    handler = type("Files", (_Files,), {"store": store})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", store
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def folders(sim_site) -> Iterator[dict[str, str]]:
    """A fresh folder on the data host and one on the login host, removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    made = {"data": f"{sim_site['data_dir']}/dls-{tag}", "login": f"{sim_site['work_dir']}/dls-{tag}"}
    yield made
    for host, folder in made.items():
        sim_site.ssh(host, f"rm -rf -- {shlex.quote(folder)}")


DATASET = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 40, "sub/deeper/c": b"",
           "run.sh": b"#!/bin/sh\necho hi\n", f"sub/{HOSTILE}": b"still data\n"}


def test_ssh_to_ssh_replaces_the_target_with_the_dataset(sim_site, folders):
    source, target = f"{folders['data']}/in {HOSTILE}", f"{folders['login']}/out {HOSTILE}"
    put_files(sim_site, "data", source, DATASET, executable=("run.sh",))
    put_files(sim_site, "login", target, {"old.txt": b"from before\n", "sub/b.bin": b"stale"})
    conf = {**host_conf(sim_site, "login"), **host_conf(sim_site, "data", "source_"), "source": source,
            "target": target, "ssh_options": ssh_options(sim_site)}
    done = transfer("ssh2ssh", conf)
    assert done.returncode == 0, done.stderr
    files, checksum = expected(DATASET)
    assert json.loads(done.stdout) == {"files": files, "checksum": checksum, "target_path": target}
    arrived = listing(sim_site, "login", target)
    # replaced, not merged: old.txt is gone, every file is the source's, modes as the embedded mover sets them
    assert {name: digest for name, (_, digest) in arrived.items() if digest != "-"} == \
        {f"./{name}": hashlib.sha256(data).hexdigest() for name, data in DATASET.items()}
    assert arrived["./run.sh"][0] == "755" and arrived["./a.txt"][0] == "644"
    assert {mode for name, (mode, digest) in arrived.items() if digest == "-"} == {"755"}
    # nothing of the move next to the target; no name ever ran
    assert sim_site.ssh("login", f"ls -A {shlex.quote(folders['login'])}").stdout.splitlines() == \
        [target.rsplit("/", 1)[1]]
    for host in ("login", "data"):
        found = sim_site.ssh(host, f"find ~ /tmp {shlex.quote(folders[host])} -name 'orch-dls-pwned*'")
        assert found.returncode == 0 and found.stdout == "", found.stdout + found.stderr
    assert not list(REPO.glob("orch-dls-pwned*"))


def test_a_single_file_arrives_in_the_target_folder(sim_site, folders):
    source, target = f"{folders['data']}/one/r.csv", f"{folders['login']}/one"
    put_files(sim_site, "data", f"{folders['data']}/one", {"r.csv": b"1,2\n"})
    conf = {**host_conf(sim_site, "login"), **host_conf(sim_site, "data", "source_"), "source": source,
            "target": target, "ssh_options": ssh_options(sim_site)}
    done = transfer("ssh2ssh", conf)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["checksum"] == expected({"r.csv": b"1,2\n"})[1]


def test_a_missing_source_is_named_and_the_target_left_as_it_was(sim_site, folders):
    target = f"{folders['login']}/kept"
    put_files(sim_site, "login", target, {"old.txt": b"from before\n"})
    missing = f"{folders['data']}/no such {HOSTILE}"
    conf = {**host_conf(sim_site, "login"), **host_conf(sim_site, "data", "source_"), "source": missing,
            "target": target, "ssh_options": ssh_options(sim_site)}
    done = transfer("ssh2ssh", conf)
    assert done.returncode == 1
    assert f"source {sim_site['ssh_user']}@{sim_site['data_host']}:{missing}: no such file or folder" in done.stderr
    assert set(listing(sim_site, "login", target)) == {"./old.txt"}


def test_an_unknown_host_key_is_refused(sim_site, folders, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    conf = {**host_conf(sim_site, "login"), **host_conf(sim_site, "data", "source_"), "source": folders["data"],
            "target": f"{folders['login']}/t", "ssh_options": [f"UserKnownHostsFile={empty}"]}
    done = transfer("ssh2ssh", conf)
    assert done.returncode == 1 and "its host key is not known" in done.stderr, done.stderr


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(data), 0o640
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_http_to_ssh_unpacks_an_archive_and_keeps_a_file(sim_site, folders, web):
    base, store = web
    store["/sets/sample.tar.gz"] = _tar_gz(DATASET)
    store["/sets/table.csv"] = b"x,y\n1,2\n"
    target = f"{folders['login']}/got"
    put_files(sim_site, "login", target, {"old.txt": b"from before\n"})
    # the published types' plainhttp2ssh conf, values as text as their playbook sends them
    conf = {**host_conf(sim_site, "login"), "url": f"{base}/sets/sample.tar.gz", "target": target,
            "force": "True", "vault_id": "", "ssh_options": ssh_options(sim_site)}
    done = transfer("http2ssh", conf)
    assert done.returncode == 0, done.stderr
    files, checksum = expected(DATASET)
    assert json.loads(done.stdout) == {"files": files, "checksum": checksum, "target_path": target}
    assert "./old.txt" not in listing(sim_site, "login", target)

    done = transfer("http2ssh", {**conf, "url": f"{base}/sets/table.csv"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["checksum"] == expected({"table.csv": b"x,y\n1,2\n"})[1]
    assert set(listing(sim_site, "login", target)) == {"./table.csv"}


def test_a_broken_download_leaves_the_old_target(sim_site, folders, web):
    base, store = web
    store["/bad.tar.gz"] = b"not gzip at all"
    target = f"{folders['login']}/stays"
    put_files(sim_site, "login", target, {"old.txt": b"from before\n"})
    conf = {**host_conf(sim_site, "login"), "target": target, "ssh_options": ssh_options(sim_site)}
    done = transfer("http2ssh", {**conf, "url": f"{base}/bad.tar.gz"})
    assert done.returncode == 1 and f"target {sim_site['ssh_user']}@" in done.stderr, done.stderr
    missing = transfer("http2ssh", {**conf, "url": f"{base}/none.tar.gz"})
    assert missing.returncode == 1 and f"source {base}/none.tar.gz: HTTP 404" in missing.stderr
    assert set(listing(sim_site, "login", target)) == {"./old.txt"}
    assert sim_site.ssh("login", f"ls -A {shlex.quote(folders['login'])}").stdout.split() == ["stays"]


def test_ssh_to_http_uploads_a_file_and_a_folder(sim_site, folders, web):
    base, store = web
    source = f"{folders['data']}/up"
    put_files(sim_site, "data", source, DATASET, executable=("run.sh",))
    conf = {**host_conf(sim_site, "data"), "ssh_options": ssh_options(sim_site)}
    done = transfer("ssh2http", {**conf, "source": f"{source}/a.txt", "url": f"{base}/put/a.txt"})
    assert done.returncode == 0, done.stderr
    assert store["/put/a.txt"] == DATASET["a.txt"]
    assert json.loads(done.stdout) == {"files": 1, "checksum": expected({"a.txt": DATASET["a.txt"]})[1],
                                       "target_path": f"{base}/put/a.txt"}

    done = transfer("ssh2http", {**conf, "source": source, "url": f"{base}/put/set.tar.gz"})
    assert done.returncode == 0, done.stderr
    with tarfile.open(fileobj=io.BytesIO(store["/put/set.tar.gz"]), mode="r:gz") as tar:
        sent = {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert sent == DATASET
    assert json.loads(done.stdout)["checksum"] == expected(DATASET)[1]

    refused = transfer("ssh2http", {**conf, "source": source, "url": f"{base}/put/set.bin"})
    assert refused.returncode == 1 and "is a folder" in refused.stderr


def test_an_image_lands_beside_the_other_images(sim_site, folders, web):
    base, store = web
    store["/images/download/app.sif"] = b"an image" * 1000
    images = f"{folders['login']}/images"
    put_files(sim_site, "login", images, {"other.sif": b"stays"})
    # the published image transfer's conf
    conf = {**host_conf(sim_site, "login"), "image_id": "app.sif", "target": images,
            "url": f"{base}/images/download/", "vault_path": "/services_secrets/image_creation",
            "ssh_options": ssh_options(sim_site)}
    done = transfer("image_transfer", conf)
    assert done.returncode == 0, done.stderr
    image = store["/images/download/app.sif"]
    assert json.loads(done.stdout) == {"files": 1, "checksum": expected({"app.sif": image})[1],
                                       "target_path": f"{images}/app.sif"}
    assert set(listing(sim_site, "login", images)) == {"./other.sif", "./app.sif"}
    assert listing(sim_site, "login", images)["./app.sif"][0] == "644"


def test_stage_in_by_catalogue_id_checks_the_records_sha256(sim_site, folders, web, tmp_path):
    from orchestrator.catalogue import YamlCatalogue, record_from_mapping

    base, store = web
    store["/sample.tar.gz"] = _tar_gz(DATASET)
    path = tmp_path / "catalogue.yaml"
    catalogue = YamlCatalogue(path)
    record = {"title": "a sample", "locations": [f"{base}/sample.tar.gz"], "size": 1, "licence": "CC-BY-4.0",
              "keywords": [], "created_by": "test"}
    catalogue.add(record_from_mapping({**record, "id": "good", "sha256": expected(DATASET)[1]}, "test"))
    catalogue.add(record_from_mapping({**record, "id": "wrong", "sha256": "0" * 64}, "test"))
    env = {"ORCH_CATALOGUE": str(path)}
    target = f"{folders['login']}/staged"
    conf = {**host_conf(sim_site, "login"), "target": target, "ssh_options": ssh_options(sim_site)}
    done = transfer("stagein", {**conf, "oid": "good"}, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["checksum"] == expected(DATASET)[1]
    wrong = transfer("stagein", {**conf, "oid": "wrong"}, env)
    assert wrong.returncode == 1 and "is not the catalogued dataset" in wrong.stderr, wrong.stderr
    unknown = transfer("stagein", {**conf, "oid": "nothing"}, env)
    assert unknown.returncode == 1 and "catalogue:nothing" in unknown.stderr, unknown.stderr


def test_a_target_the_embedded_mover_refuses_is_refused(sim_site):
    for target in ("/scratch", "relative/path", "/scratch/../etc"):
        done = transfer("http2ssh", {**host_conf(sim_site, "login"), "url": "http://127.0.0.1:9/x.tar.gz",
                                     "target": target})
        assert done.returncode == 1 and f"target {target}: " in done.stderr, done.stderr


def test_the_target_rules_are_the_embedded_movers():
    sys.path.insert(0, str(REPO / "playbooks" / "eflows" / "filter_plugins"))
    try:
        import eflows
    finally:
        sys.path.pop(0)
    rule = subprocess.run([str(DLS_PYTHON), "-c", "import json, sys; from orchestrator.dls.places import "
                           "target_problem; print(json.dumps([target_problem(p) for p in json.load(sys.stdin)]))"],
                          input=json.dumps(PATHS), capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(rule.stdout) == [eflows.target_problem(p) for p in PATHS]


PATHS = ["", " ", "/", "/scratch", "/scratch/", "/scratch/x", "scratch/x", "/a/./b", "/a/../b", "//a//b", "/a/b c"]


def test_stage_out_registers_its_result_in_the_catalogue(sim_site, folders, tmp_path):
    from orchestrator.catalogue import YamlCatalogue

    source = f"{folders['data']}/result"
    put_files(sim_site, "data", source, DATASET)
    path = tmp_path / "catalogue.yaml"
    target = str(tmp_path / "out" / "result")
    # the published stage-out's conf (register as text), the result brought to this machine
    conf = {**host_conf(sim_site, "data"), "source": source, "target": target, "register": "True",
            "mid": "the result", "deployment": "wc", "node": "stage_out", "ssh_options": ssh_options(sim_site)}
    done = transfer("stageout", conf, {"ORCH_CATALOGUE": str(path)})
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    record = YamlCatalogue(path).record(reply["id"])
    assert record.sha256 == reply["checksum"] == expected(DATASET)[1]
    assert record.locations == (target,) and record.title == "the result"
    assert record.size == sum(len(data) for data in DATASET.values())
