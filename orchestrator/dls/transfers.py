"""The transfers the DAGs make, in plain paramiko and the standard library (no Airflow: runnable and testable
without it). Data streams through this machine: from the source host's `tar` over one SSH channel into the
target host's `tar` over another, from an HTTP download into the target, from the source into an HTTP upload.

Every transfer ends as the embedded mover's does (playbooks/eflows/movers/ansible/move.yaml): the dataset is
unpacked into a fresh sibling folder of the target, its files made 0644 (0755 if executable) and its folders
0755, its manifest (`find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --`, run there) compared
with the source's, and only then swapped in for the target, which is REPLACED, not merged into; a failed
transfer leaves the old target as it was. The result is {files, checksum, target_path}, `checksum` the sha256
of the manifest's text (without its last newline, as Ansible's stdout has it): the embedded mover's numbers.

Values (paths, names) reach the shell scripts below only as variable assignments quoted by shlex.quote at the
top of the script, and every path is given to a command after `--` (or as ./name): no value is ever code.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator.dls.places import SshHost, SshPlace, Transfer, TransferError, UrlPlace, flag, is_url, plan

MANIFEST = "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --"
CHUNK = 1 << 16
_MISSING = 3  # the exit status of a probe that found no source

# What is at the source: "d" or "f", then its manifest (a file's: `sha256sum -- ./name`, as the mover's).
PROBE = f"""[ -e "$SRC" ] || {{ echo "no such file or folder" >&2; exit {_MISSING}; }}
if [ -d "$SRC" ]; then echo d; cd -- "$SRC"; {MANIFEST}
else echo f; dir=${{SRC%/*}}; cd -- "${{dir:-/}}"; sha256sum -- "./${{SRC##*/}}"; fi"""
PACK = """if [ -d "$SRC" ]; then cd -- "$SRC"; exec tar -czf - .
else dir=${SRC%/*}; cd -- "${dir:-/}"; exec tar -czf - "./${SRC##*/}"; fi"""
CAT = 'exec cat -- "$SRC"'
# A fresh folder next to the target (the target itself refused when it is a file or the home folder).
PREPARE = """if [ -e "$TARGET" ] && [ ! -d "$TARGET" ]; then echo "it exists and is not a folder" >&2; exit 1; fi
if [ -n "$HOME" ] && [ "$TARGET" -ef "$HOME" ]; then
  echo "it is the home folder: refused (the target is replaced by the dataset)" >&2; exit 1
fi
parent=${TARGET%/*}
mkdir -p -- "${parent:-/}"
mktemp -d -- "${parent}/.${TARGET##*/}.orch-XXXXXX\""""
UNPACK = 'exec tar -xzf - --no-same-owner -C "$NEW"'
PUT_FILE = 'exec cat > "$NEW/$NAME"'
CHECK = f'chmod -R u=rwX,go=rX -- "$NEW"; cd -- "$NEW"; {MANIFEST}'
SWAP = """if [ -e "$TARGET" ]; then mv -T -- "$TARGET" "$NEW.old"; fi
if ! mv -T -- "$NEW" "$TARGET"; then
  if [ -e "$NEW.old" ]; then mv -T -- "$NEW.old" "$TARGET"; fi
  exit 1
fi
rm -rf -- "$NEW.old\""""
CLEAN = 'rm -rf -- "$NEW" "$NEW.old"'
EXISTING = 'if [ -d "$TARGET" ]; then cd -- "$TARGET"; ' + MANIFEST + '; else exit 1; fi'
# The image transfer: one file put into a folder, only that file replaced.
PREPARE_FILE = """mkdir -p -- "$DIR"
if [ -d "$DIR/$NAME" ]; then echo "$NAME is a folder there" >&2; exit 1; fi
mktemp -- "$DIR/.$NAME.orch-XXXXXX\""""
PUT_TEMP = 'exec cat > "$NEW"'
CHECK_FILE = 'chmod 0644 -- "$NEW"; sha256sum -- "$NEW"'
SWAP_FILE = 'mv -f -T -- "$NEW" "$DIR/$NAME"; cd -- "$DIR"; sha256sum -- "./$NAME"'
CLEAN_FILE = 'rm -f -- "$NEW"'


@dataclass(frozen=True)
class Result:
    files: int
    checksum: str
    target_path: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def result_of(manifest: bytes, target_path: str) -> Result:
    """The embedded mover's numbers of a manifest: its lines, and the sha256 of its text as Ansible's stdout
    keeps it (the trailing newline dropped)."""
    text = manifest.rstrip(b"\r\n")
    return Result(len(text.splitlines()), hashlib.sha256(text).hexdigest(), target_path)


def script(body: str, **values: str) -> str:
    """A POSIX sh script: each value assigned to its variable, quoted, before the body (set -e)."""
    assignments = "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())
    return f"set -e\n{assignments}{body}\n"


class Failed(Exception):
    """A script that exited non-zero, with the end of its stderr."""

    def __init__(self, status: int, stderr: bytes):
        self.status = status
        self.stderr = stderr.decode("utf-8", errors="replace").strip()[-2000:]
        super().__init__(f"exit status {status}: {self.stderr}")


class Shell(Protocol):
    """Somewhere scripts run: a host over SSH, or this machine."""

    def run(self, text: str, feed: Iterator[bytes] | None = None) -> bytes:
        """Run the script, its stdin fed from `feed`; its stdout. Raises Failed."""

    def output(self, text: str) -> Iterator[bytes]:
        """Run the script, yielding its stdout chunk by chunk; raises Failed at the end if it failed."""


class RemoteShell:
    def __init__(self, client: Any):
        self.transport = client.get_transport()

    def _start(self, text: str) -> Any:
        channel = self.transport.open_session()
        channel.exec_command("sh -c " + shlex.quote(text))  # the login shell only starts sh
        return channel

    def run(self, text: str, feed: Iterator[bytes] | None = None) -> bytes:
        channel = self._start(text)
        out, err = bytearray(), bytearray()
        try:
            for chunk in feed or ():
                try:
                    channel.sendall(chunk)
                except OSError:
                    break  # it stopped reading (it failed): its status and stderr say why
                # what it says meanwhile is read, so that it never blocks on a full window
                while channel.recv_ready():
                    out += channel.recv(CHUNK)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(CHUNK)
            channel.shutdown_write()
            out += _read_all(channel.recv)
            err += _read_all(channel.recv_stderr)
            status = channel.recv_exit_status()
        finally:
            channel.close()
        if status != 0:
            raise Failed(status, bytes(err))
        return bytes(out)

    def output(self, text: str) -> Iterator[bytes]:
        channel = self._start(text)
        try:
            channel.shutdown_write()
            while chunk := channel.recv(CHUNK):
                yield chunk
            err = _read_all(channel.recv_stderr)
            status = channel.recv_exit_status()
        finally:
            channel.close()
        if status != 0:
            raise Failed(status, err)


class LocalShell:
    """This machine, through `sh -c` (argv list: the script is one argument, no shell parses values)."""

    def run(self, text: str, feed: Iterator[bytes] | None = None) -> bytes:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            process = subprocess.Popen(["sh", "-c", text], stdin=subprocess.PIPE, stdout=out, stderr=err)
            try:
                for chunk in feed or ():
                    process.stdin.write(chunk)
            except BrokenPipeError:
                pass
            finally:
                try:
                    process.stdin.close()
                except BrokenPipeError:
                    pass
            status = process.wait()
            out.seek(0)
            err.seek(0)
            if status != 0:
                raise Failed(status, err.read())
            return out.read()

    def output(self, text: str) -> Iterator[bytes]:
        with tempfile.TemporaryFile() as err:
            process = subprocess.Popen(["sh", "-c", text], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=err)
            try:
                while chunk := process.stdout.read(CHUNK):
                    yield chunk
            finally:
                process.stdout.close()
                if process.poll() is None:
                    process.kill()  # the reader gave up: the packing is not needed any more
                status = process.wait()
            if status != 0:
                err.seek(0)
                raise Failed(status, err.read())


def _read_all(read: Callable[[int], bytes]) -> bytes:
    data = bytearray()
    while chunk := read(CHUNK):
        data += chunk
    return bytes(data)


# -- connecting --------------------------------------------------------------------------------------------

@contextmanager
def connected(host: SshHost, what: str) -> Iterator[RemoteShell]:
    """A shell on host over SSH, its key read at run time (keys.py), its host key checked as ssh_options say.
    `what` ("source ...", "target ...") starts every error's message."""
    import paramiko

    from orchestrator.dls.keys import KeyProblem, load_key

    try:
        key = load_key(host.vault_id or None, host.key_file or None)
    except KeyProblem as exc:
        raise TransferError(f"{what}: {exc}") from None
    client = paramiko.SSHClient()
    checking = host.host_keys.checking
    if checking != "no":
        for name in host.host_keys.known_hosts:
            path = Path(name).expanduser()
            if path.is_file():
                client.load_system_host_keys(str(path))  # read only: nothing is ever saved to them
    # "no" and "accept-new": an unknown host is accepted for this connection only; a key that differs from a
    # known one is refused all the same (paramiko's BadHostKeyException) unless "no" loaded no file at all
    client.set_missing_host_key_policy(paramiko.RejectPolicy() if checking == "yes" else paramiko.AutoAddPolicy())
    try:
        client.connect(host.address, port=host.port, username=host.login or None, pkey=key, allow_agent=False,
                       look_for_keys=False, timeout=host.host_keys.connect_timeout,
                       banner_timeout=host.host_keys.connect_timeout, auth_timeout=host.host_keys.connect_timeout)
    except paramiko.BadHostKeyException:
        client.close()
        raise TransferError(f"{what}: the host key of {host.describe()} is not the known one") from None
    except paramiko.AuthenticationException:
        client.close()
        raise TransferError(f"{what}: {host.describe()} refused the key") from None
    except paramiko.SSHException as exc:
        client.close()
        reason = "its host key is not known (ssh_options: UserKnownHostsFile)" if "not found in known_hosts" \
            in str(exc) else str(exc)
        raise TransferError(f"{what}: cannot log in to {host.describe()}: {reason}") from None
    except OSError as exc:
        client.close()
        raise TransferError(f"{what}: cannot reach {host.describe()}: {exc.strerror or exc}") from None
    try:
        yield RemoteShell(client)
    finally:
        client.close()


# -- the moves ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """What a transfer reads: a feed of bytes (a .tar.gz, or one file's bytes when `name` is set), and the
    manifest it must arrive with (None when only the target can tell: an archive downloaded)."""

    feed: Iterator[bytes]
    manifest: bytes | None
    name: str = ""  # one file, not an archive: its name in the target folder
    digest: Callable[[], str] | None = None  # that file's sha256, known once the feed is drained


def probe(shell: Shell, path: str, what: str) -> tuple[str, bytes]:
    """("d" or "f", the manifest) of the source at path; a missing one raises naming it."""
    try:
        kind, _, manifest = shell.run(script(PROBE, SRC=path)).partition(b"\n")
    except Failed as exc:
        if exc.status == _MISSING:
            raise TransferError(f"source {what}: no such file or folder") from None
        raise TransferError(f"source {what}: cannot read it: {exc.stderr}") from None
    return kind.decode(), manifest


def _deliver(shell: Shell, path: str, what: str, source: Source, force: bool) -> Result:
    """The dataset into a fresh sibling of the target folder, checked, swapped in (the target replaced)."""
    if not force:
        try:
            return result_of(shell.run(script(EXISTING, TARGET=path)), path)  # kept as it is
        except Failed:
            pass
    try:
        new = shell.run(script(PREPARE, TARGET=path)).decode().rstrip("\n")
    except Failed as exc:
        raise TransferError(f"target {what}: {exc.stderr}") from None
    try:
        try:
            if source.name:
                shell.run(script(PUT_FILE, NEW=new, NAME=source.name), source.feed)
            else:
                shell.run(script(UNPACK, NEW=new), source.feed)
        except Failed as exc:
            raise TransferError(f"target {what}: the data could not be written: {exc.stderr}") from None
        arrived = shell.run(script(CHECK, NEW=new))
        _compare(arrived, source, what)
        try:
            shell.run(script(SWAP, TARGET=path, NEW=new))
        except Failed as exc:
            raise TransferError(f"target {what}: could not be replaced: {exc.stderr}") from None
    finally:
        try:
            shell.run(script(CLEAN, NEW=new))
        except (Failed, OSError):
            pass  # the error that brought us here is the one to tell
    return result_of(arrived, path)


def _deliver_file(shell: Shell, folder: str, what: str, source: Source) -> Result:
    """One file into the target folder, replacing only that file (an image among the images)."""
    try:
        new = shell.run(script(PREPARE_FILE, DIR=folder, NAME=source.name)).decode().rstrip("\n")
    except Failed as exc:
        raise TransferError(f"target {what}: {exc.stderr}") from None
    try:
        try:
            shell.run(script(PUT_TEMP, NEW=new), source.feed)
        except Failed as exc:
            raise TransferError(f"target {what}: the data could not be written: {exc.stderr}") from None
        digest = shell.run(script(CHECK_FILE, NEW=new)).split()[0].lstrip(b"\\").decode()
        if source.digest and digest != source.digest():
            raise TransferError(f"target {what}: checksum mismatch: {digest} there, {source.digest()} sent")
        arrived = shell.run(script(SWAP_FILE, DIR=folder, NAME=source.name, NEW=new))
    finally:
        try:
            shell.run(script(CLEAN_FILE, NEW=new))
        except (Failed, OSError):
            pass
    return result_of(arrived, f"{folder}/{source.name}")


def _compare(arrived: bytes, source: Source, what: str) -> None:
    there = arrived.rstrip(b"\r\n").splitlines()
    if source.manifest is not None:
        sent = source.manifest.rstrip(b"\r\n").splitlines()
        if sent != there:
            differ = sorted(set(sent) ^ set(there))[:5]
            raise TransferError(f"target {what}: checksum mismatch: {[d.decode(errors='replace') for d in differ]}")
    elif source.digest is not None:
        digest = source.digest()
        if len(there) != 1 or there[0].lstrip(b"\\").split()[0].decode() != digest:
            raise TransferError(f"target {what}: checksum mismatch: {digest} sent, {there[:1]} arrived")


def _shell_source(shell: Shell, path: str, what: str, stack: ExitStack) -> Source:
    _kind, manifest = probe(shell, path, what)
    feed = shell.output(script(PACK, SRC=path))
    stack.callback(getattr(feed, "close", lambda: None))
    return Source(_named(feed, f"source {what}"), manifest)


def _named(feed: Iterator[bytes], what: str) -> Iterator[bytes]:
    """The feed, its failure told as a TransferError naming the place."""
    try:
        yield from feed
    except Failed as exc:
        raise TransferError(f"{what}: reading it failed: {exc.stderr}") from None


def _download(url: UrlPlace, stack: ExitStack) -> Source:
    try:
        response = stack.enter_context(urllib.request.urlopen(url.url, timeout=60))
    except urllib.error.HTTPError as exc:
        raise TransferError(f"source {url.url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TransferError(f"source {url.url}: cannot download it: {getattr(exc, 'reason', exc)}") from None
    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                yield chunk
        except OSError as exc:
            raise TransferError(f"source {url.url}: the download broke off: {exc}") from None

    if url.is_archive:
        return Source(chunks(), None)
    return Source(chunks(), None, name=url.name, digest=digest.hexdigest)


def move(transfer: Transfer) -> Result:
    """Make the transfer; raises TransferError naming the source or the target."""
    source, target = transfer.source, transfer.target
    with ExitStack() as stack:
        if isinstance(target, UrlPlace):
            return _upload(transfer, stack)
        if isinstance(source, UrlPlace):
            data = _download(source, stack)
        elif isinstance(source, SshPlace):
            data = _shell_source(stack.enter_context(connected(source.host, f"source {source.describe()}")),
                                 source.path, source.describe(), stack)
        else:
            data = _shell_source(LocalShell(), source.path, source.describe(), stack)
        if isinstance(target, SshPlace):
            shell: Shell = stack.enter_context(connected(target.host, f"target {target.describe()}"))
        else:
            shell = LocalShell()
        if transfer.as_file:
            return _deliver_file(shell, target.path, target.describe(), replace_name(data, transfer.as_file))
        return _deliver(shell, target.path, target.describe(), data, transfer.force)


def replace_name(data: Source, name: str) -> Source:
    if not data.name:
        raise TransferError(f"{name}: an archive cannot be put in as one file")
    return Source(data.feed, data.manifest, name, data.digest)


def _upload(transfer: Transfer, stack: ExitStack) -> Result:
    """The source to an HTTP(S) URL: a file as it is, a folder as a .tar.gz (its URL must say so); a PUT is
    checked by reading the URL back (a POST's URL names no resource to read)."""
    source, url = transfer.source, transfer.target
    assert isinstance(url, UrlPlace) and not isinstance(source, UrlPlace)
    if isinstance(source, SshPlace):
        shell: Shell = stack.enter_context(connected(source.host, f"source {source.describe()}"))
    else:
        shell = LocalShell()
    kind, manifest = probe(shell, source.path, source.describe())
    if kind == "d" and not url.is_archive:
        raise TransferError(f"target {url.url}: {source.describe()} is a folder: it is uploaded as a .tar.gz, "
                            "to a URL ending in .tar.gz or .tgz")
    with tempfile.TemporaryFile() as spool:
        sent = hashlib.sha256()
        for chunk in _named(shell.output(script(PACK if kind == "d" else CAT, SRC=source.path)),
                            f"source {source.describe()}"):
            spool.write(chunk)
            sent.update(chunk)
        size = spool.tell()
        spool.seek(0)
        _send(url, spool, size, sent.hexdigest())
    return result_of(manifest, url.url)


def _send(url: UrlPlace, body: Any, size: int, digest: str) -> None:
    request = urllib.request.Request(url.url, data=body, method=url.method,
                                     headers={"Content-Length": str(size),
                                              "Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=300) as reply:
            reply.read()
        if url.method == "PUT":
            with urllib.request.urlopen(url.url, timeout=300) as back:
                there = hashlib.sha256()
                while chunk := back.read(CHUNK):
                    there.update(chunk)
            if there.hexdigest() != digest:
                raise TransferError(f"target {url.url}: checksum mismatch: {there.hexdigest()} read back, "
                                    f"{digest} sent")
    except urllib.error.HTTPError as exc:
        raise TransferError(f"target {url.url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TransferError(f"target {url.url}: cannot upload: {getattr(exc, 'reason', exc)}") from None


# -- from a run's conf -------------------------------------------------------------------------------------

SIZE = ('if [ -d "$TARGET" ]; then cd -- "$TARGET"; find . -type f -printf "%s\\n" | awk "{s+=\\$1} END {print s+0}"; '
        'else stat -c %s -- "$TARGET"; fi')


def _catalogue() -> Any:
    from orchestrator.catalogue import YamlCatalogue, catalogue_path
    from orchestrator.home import default_home

    return YamlCatalogue(catalogue_path(default_home()))


def resolve(kind: str, conf: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """stagein's `oid`: (the conf with the record's first readable location as `source`, the record's
    sha256); any other conf as it is, with no sha256 to check. A location HOST:/path is read on HOST (or on
    the conf's source_host, when the caller knows HOST by another address)."""
    if kind != "stagein" or not conf.get("oid"):
        # a caller that resolved the record itself (orch's Airflow mover) sends the sha256 to check
        return conf, str(conf.get("sha256") or "")
    from orchestrator.catalogue import location_problem, resolve_source

    found = resolve_source(f"catalogue:{conf['oid']}", "orch_stagein", _catalogue(), location_problem)
    if found["problem"]:
        raise TransferError(found["problem"])
    source = found["source"]
    host, sep, path = source.partition(":")
    if sep and not is_url(source) and not source.startswith("/"):
        return {**conf, "source": path, "source_host": conf.get("source_host") or host}, found["sha256"]
    return {**conf, "source": source}, found["sha256"]


def _register(transfer: Transfer, conf: Mapping[str, Any], result: Result) -> str:
    """stageout's `register`: the result as a catalogue record (its id), its size counted where it is."""
    from orchestrator.catalogue import CatalogueError, register_result

    place = transfer.source if isinstance(transfer.target, UrlPlace) else transfer.target
    with ExitStack() as stack:
        shell: Shell = (stack.enter_context(connected(place.host, f"target {place.describe()}"))
                        if isinstance(place, SshPlace) else LocalShell())
        size = int(shell.run(script(SIZE, TARGET=place.path)).strip() or 0)
    where = transfer.target
    location = where.url if isinstance(where, UrlPlace) else (
        f"{where.host.address}:{where.path}" if isinstance(where, SshPlace) else where.path)
    try:
        record = register_result(_catalogue(), deployment=str(conf.get("deployment") or "dls"),
                                 node=str(conf.get("node") or "orch_stageout"), target=location, size=size,
                                 checksum=result.checksum, source=transfer.source.describe(),
                                 title=str(conf.get("mid") or ""))
    except CatalogueError as exc:
        raise TransferError(f"target {where.describe()}: the result could not be registered: {exc}") from None
    return record.id


def run(kind: str, conf: Mapping[str, Any]) -> dict[str, Any]:
    """What a DAG's task does: the transfer its conf describes; {files, checksum, target_path} (and the new
    record's `id` when a stage-out registers its result)."""
    conf, sha256 = resolve(kind, conf)
    transfer = plan(kind, conf)
    result = move(transfer)
    if sha256 and result.checksum != sha256:
        raise TransferError(f"source catalogue:{conf.get('oid')}: the data at {transfer.source.describe()} is not "
                            f"the catalogued dataset (its checksum is {result.checksum}, the record's sha256 "
                            f"{sha256})")
    if kind == "stageout" and flag(conf, "register", False):
        return {**result.as_dict(), "id": _register(transfer, conf, result)}
    return result.as_dict()


def main(argv: list[str]) -> int:
    """`python -m orchestrator.dls.transfers KIND` with the conf as JSON on stdin: the result as JSON on
    stdout, or the error on stderr (exit 1)."""
    if len(argv) != 1:
        print("usage: python -m orchestrator.dls.transfers KIND < conf.json", file=sys.stderr)
        return 2
    try:
        print(json.dumps(run(argv[0], json.load(sys.stdin))))
    except TransferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
