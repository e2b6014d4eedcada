"""The embedded data mover (playbooks/eflows/data_move.yaml) through the CLI, on this machine: the target is
replaced by the dataset (not merged into), dangerous targets are refused, a URL source (a local HTTP
server), the end-to-end checksum check (the source's sums against the target's) provoked for real, at the
source and at the target, small datasets and large ones (over 4 MiB: a connection of their own per end),
a target that fails while unpacking, and a failed move that leaves the old target as it was. The topology
(tests/integration/data/data_mover.yaml) has only the pipeline, so its deploy runs nothing."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "tests" / "integration" / "data" / "data_mover.yaml"


def orch(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          check=False, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)


def move(home: Path, source: str, target: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return orch(home, "run", "mover", "--set", f"source={source}", "--set", f"target={target}", env=env)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by its path relative to it, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(target: Path) -> list[str]:
    """What a move left next to its target (its sibling folders and packs)."""
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.orch-"))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("mover") / "home"
    deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "mover")
    assert deployed.returncode == 0, deployed.stderr
    return home


def dataset(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_the_target_holds_exactly_the_last_dataset(home, tmp_path):
    first = dataset(tmp_path / "first", {"a.txt": "one", "b.txt": "two", "sub/c.txt": "three"})
    second = dataset(tmp_path / "second", {"d.txt": "four", "e.txt": "five"})
    target = tmp_path / "cluster" / "input"
    for source, host in ((first, "data:"), (second, "")):  # from a host, then from the controller
        moved = move(home, f"{host}{source}", f"environment:{target}")
        assert moved.returncode == 0, moved.stderr
        assert tree(target) == tree(source)
        assert leftovers(target) == []
    # a controller target is replaced the same way
    local = tmp_path / "results" / "here"
    for source in (first, second):
        moved = move(home, f"data:{source}", str(local))
        assert moved.returncode == 0, moved.stderr
        assert tree(local) == tree(source)


def test_modes_at_the_target_are_those_of_ordinary_files(home, tmp_path):
    source = dataset(tmp_path / "private", {"secret-looking.txt": "x", "sub/deep.txt": "y", "run.sh": "true"})
    for path in source.rglob("*"):
        path.chmod(0o700 if path.is_dir() or path.name == "run.sh" else 0o600)
    target = tmp_path / "cluster" / "modes"
    moved = move(home, f"data:{source}", f"environment:{target}")
    assert moved.returncode == 0, moved.stderr
    modes = {str(p.relative_to(target)): stat.S_IMODE(p.stat().st_mode) for p in target.rglob("*")}
    assert modes == {"secret-looking.txt": 0o644, "sub": 0o755, "sub/deep.txt": 0o644, "run.sh": 0o755}
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


@pytest.mark.parametrize("target, problem", [
    ("/", "/ or a top-level folder is refused"),
    ("/tmp", "/ or a top-level folder is refused"),
    ("{tmp}/a/../b", "'.' or '..' components is refused"),
    ("{tmp}/./b", "'.' or '..' components is refused"),
    ("environment:/", "/ or a top-level folder is refused"),
])
def test_dangerous_targets_are_refused(home, tmp_path, target, problem):
    source = dataset(tmp_path / "set", {"a.txt": "a"})
    moved = move(home, str(source), target.format(tmp=tmp_path))
    assert moved.returncode == 1
    assert problem in moved.stdout + moved.stderr and "Traceback" not in moved.stderr
    assert "task 'Refuse a target that cannot safely be replaced by the dataset'" in moved.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server(tmp_path):
    """python -m http.server on 127.0.0.1 serving tmp_path/www, stopped by its PID."""
    www = tmp_path / "www"
    www.mkdir()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(www),
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):  # bounded wait for it to listen
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "the HTTP server exited"
                time.sleep(0.1)
        else:
            pytest.fail(f"the HTTP server did not answer on {url}")
        yield www, url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_url_sources_an_archive_and_a_file(home, tmp_path, http_server):
    www, url = http_server
    source = dataset(tmp_path / "packed", {"one.txt": "alpha beta", "two/three.txt": "gamma"})
    subprocess.run(["tar", "-czf", str(www / "set.tar.gz"), "-C", str(source), "."], check=True)
    (www / "single.txt").write_text("just one file\n")
    target = tmp_path / "cluster" / "from-url"
    moved = move(home, f"{url}/set.tar.gz", f"environment:{target}")
    assert moved.returncode == 0, moved.stderr
    assert tree(target) == tree(source)
    moved = move(home, f"{url}/single.txt", f"environment:{target}")
    assert moved.returncode == 0, moved.stderr
    assert tree(target) == {"single.txt": b"just one file\n"}
    missing = move(home, f"{url}/nothing-here.tar.gz", f"environment:{target}")
    assert missing.returncode == 1 and "task 'Download'" in missing.stderr
    assert tree(target) == {"single.txt": b"just one file\n"}  # a failed move leaves the target as it was


def test_data_changed_at_the_source_fails_and_keeps_the_target(home, tmp_path):
    # procfs reports its files as 0 bytes long but reads them with content: tar (which trusts the size) packs
    # an empty file, sha256sum at the source reads the content - a real source whose data alters on the way
    target = tmp_path / "cluster" / "kept"
    before = dataset(tmp_path / "before", {"old.txt": "old"})
    assert move(home, str(before), str(target)).returncode == 0
    moved = move(home, "data:/proc/version", str(target))
    assert moved.returncode == 1
    assert f"the data at {target} is not the data of data:/proc/version" in moved.stderr
    assert f"task '{MOVE_TASK}'" in moved.stderr  # the move itself fails, naming the files
    assert "./version" in moved.stderr  # the file that differs is named
    assert tree(target) == {"old.txt": b"old"} and leftovers(target) == []


FAULTY_TAR = """#!/bin/sh
# TEST DOUBLE of a faulty filesystem at the target: the real tar, then, when it unpacked into a move's new
# folder next to a target (.NAME.orch-XXXXXX), one byte appended to every file it wrote there.
{real} "$@" || exit $?
dir=""; next=""
for arg in "$@"; do
  if [ "$next" = 1 ]; then dir=$arg; next=""; fi
  [ "$arg" = -C ] && next=1
done
case "$dir" in
  */.*.orch-*) find "$dir" -type f -exec sh -c 'printf x >> "$1"' sh {{}} \\; ;;
esac
"""


FAILING_TAR = """#!/bin/sh
# TEST DOUBLE of a target whose disk fills up: tar unpacking into a move's new folder reads a little and fails.
case "$*" in
  *.orch-*) head -c 100000 > /dev/null; echo "tar: write error: No space left on device" >&2; exit 2 ;;
esac
exec {real} "$@"
"""


def with_tar(tmp_path: Path, double: str) -> dict[str, str]:
    """This process's environment with a test double of tar first on PATH."""
    tools = tmp_path / "faulty-tools"
    tools.mkdir()
    real_tar = subprocess.run(["sh", "-c", "command -v tar"], capture_output=True, text=True, check=True).stdout.strip()
    (tools / "tar").write_text(double.format(real=real_tar))
    (tools / "tar").chmod(0o755)
    return {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}


# a small dataset and 5.5 MB of text (above eflows_stream.STREAM_ALONE: a connection of its own per end)
SIZES = pytest.mark.parametrize("more", ["more", "more words\n" * 500_000], ids=["small", "large"])


@SIZES
def test_data_altered_at_the_target_fails_and_keeps_the_target(home, tmp_path, more):
    target = tmp_path / "cluster" / "kept"
    before = dataset(tmp_path / "before", {"old.txt": "old"})
    assert move(home, str(before), f"environment:{target}").returncode == 0
    env = with_tar(tmp_path, FAULTY_TAR)
    after = dataset(tmp_path / "after", {"new.txt": "new", "more.txt": more})
    moved = move(home, f"data:{after}", f"environment:{target}", env=env)
    assert moved.returncode == 1
    assert f"the data at environment:{target} is not the data of data:{after}" in moved.stderr
    assert "./new.txt" in moved.stderr and "./more.txt" in moved.stderr
    assert f"task '{MOVE_TASK}'" in moved.stderr  # the move itself fails, naming the files
    assert tree(target) == {"old.txt": b"old"} and leftovers(target) == []
    # the same move without the faulty filesystem goes through
    assert move(home, f"data:{after}", f"environment:{target}").returncode == 0
    assert tree(target) == tree(after)


@SIZES
def test_a_target_that_fails_while_unpacking_keeps_the_target(home, tmp_path, more):
    target = tmp_path / "cluster" / "kept"
    before = dataset(tmp_path / "before", {"old.txt": "old"})
    assert move(home, str(before), f"environment:{target}").returncode == 0
    after = dataset(tmp_path / "after", {"new.txt": "new", "more.txt": more})
    moved = move(home, f"data:{after}", f"environment:{target}", env=with_tar(tmp_path, FAILING_TAR))
    assert moved.returncode == 1
    assert "No space left on device" in moved.stderr, moved.stderr
    assert f"the move failed at the target ({target})" in moved.stderr, moved.stderr
    assert tree(target) == {"old.txt": b"old"} and leftovers(target) == []


def test_the_home_folder_is_refused_as_a_target(home, tmp_path):
    fake_home = dataset(tmp_path / "alice", {"thesis.txt": "years of work"})  # HOME of this run only
    source = dataset(tmp_path / "set", {"a.txt": "a"})
    moved = move(home, str(source), f"environment:{fake_home}", env={**os.environ, "HOME": str(fake_home)})
    assert moved.returncode == 1
    assert f"{fake_home} is the home folder: refused" in moved.stderr, moved.stderr
    assert (fake_home / "thesis.txt").read_text() == "years of work"


def test_a_missing_source_is_named(home, tmp_path):
    for source in (f"data:{tmp_path}/nothing", f"{tmp_path}/nothing"):
        moved = move(home, source, f"environment:{tmp_path}/target")
        assert moved.returncode == 1
        assert f"no such file or folder: {tmp_path}/nothing" in moved.stderr, moved.stderr


MOVE_TASK = "Move the dataset (checksums at the source, one tar stream, checked at the target, swapped in)"


def tasks_logged(home: Path, execution: str) -> list[tuple[str, str]]:
    """(status, task) of every task of an execution of the mover, skipped ones too, from its log."""
    logged = orch(home, "logs", "mover", execution)
    assert logged.returncode == 0, logged.stderr
    found = [re.search(r" task .*?: (ok|changed|skipped|failed): (.*)$", line) for line in logged.stdout.splitlines()]
    return [(m.group(1), m.group(2)) for m in found if m]


def tasks_run(home: Path, execution: str) -> list[str]:
    """The tasks that ran (not skipped) in an execution of the mover, from its log."""
    return [task for status, task in tasks_logged(home, execution) if status in ("ok", "changed")]


def test_a_small_dataset_moves_in_a_few_tasks(home, tmp_path):
    source = dataset(tmp_path / "small", {"a.txt": "a " * 100, "b.txt": "b"})
    target = tmp_path / "cluster" / "small"
    moved = move(home, f"data:{source}", f"environment:{target}")
    assert moved.returncode == 0, moved.stderr
    assert tree(target) == tree(source)
    ran = tasks_run(home, moved.stdout.split()[0])
    # one action on the controller moves it (three commands at the ends, no module run); the rest is
    # bookkeeping on the controller (the catalogue's answer, the record and report, the staging folder)
    assert MOVE_TASK in ran
    assert len(ran) <= 5, ran
    # a skipped task costs the controller about as much as one that runs (a fork each): few of those too
    logged = tasks_logged(home, moved.stdout.split()[0])
    assert len(logged) <= 9, logged


def test_a_large_dataset_travels_as_a_stream_and_leaves_nothing_behind(home, tmp_path):
    # above 4 MiB (eflows_stream.STREAM_ALONE) the stream has a connection of its own per end
    source = tmp_path / "large"
    source.mkdir()
    (source / "noise.bin").write_bytes(os.urandom(1_500_000))
    (source / "small.txt").write_text("small")
    (source / "sub").mkdir()
    (source / "sub" / "text.txt").write_text("words and more words\n" * 250_000)
    single = tmp_path / "one file.bin"
    single.write_bytes(os.urandom(1_200_000))
    for origin, destination in ((f"data:{source}", f"environment:{tmp_path}/cluster/large"),
                                (str(source), f"environment:{tmp_path}/cluster/large2"),
                                (f"data:{source}", f"{tmp_path}/results/large"),
                                (f"data:{single}", f"{tmp_path}/results/single")):
        moved = move(home, origin, destination)
        assert moved.returncode == 0, moved.stderr
        target = Path(destination.split(":", 1)[-1])
        expected = tree(source) if origin.endswith("large") else {single.name: single.read_bytes()}
        assert tree(target) == expected
        assert leftovers(target) == []
        ran = tasks_run(home, moved.stdout.split()[0])
        assert MOVE_TASK in ran, ran
    staging = home / "deployments" / "mover" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_a_name_that_is_not_utf8_moves(home, tmp_path):
    source = tmp_path / "latin1"
    source.mkdir()
    (source / os.fsdecode(b"caf\xe9.txt")).write_text("coffee")  # Latin-1 bytes, not UTF-8
    (source / "plain.txt").write_text("plain")
    target = tmp_path / "cluster" / "latin1"
    moved = move(home, f"data:{source}", f"environment:{target}")
    assert moved.returncode == 0, moved.stderr
    assert tree(target) == tree(source)
