"""Action eflows_stream: the embedded mover's move (movers/ansible/move.yaml), done from the controller with
three commands at the two ends (and a `true` that opens the target's SSH master early) and no module run:

1. at the source: does it exist, how large is it, and every file's sha256 (the manifest: one line each, in a
   stable order);
2. one tar stream from the source (`tar -cf -`) through this controller, never stored here, into a new
   folder next to the target, where every file's sha256 is computed again and compared with the source's
   (as a digest of the manifest, given as an argument); only if they are equal is the new folder swapped in
   for the target, else the target is left as it was and the target's manifest comes back.

Arguments: `source` and `target`, each `{host: <its ORCH_HOSTS entry, or {} for this controller>, path}`, and
`mismatch`, what to say when the files that arrived are not the source's (the task then fails, naming them).
Returns `manifest` (the source's, as lines). A failure names the end and what it said; an end that cannot be
reached (ssh exit 255) is reported unreachable, so that the engine retries it as it retries any other.

Paths reach the ends' shells only as arguments ("$1"), quoted for the remote shell as Ansible quotes its own;
names go to tar and mv after `--` or as ./name, so no name is taken as an option. The target folder is
REPLACED, not merged into: after a move it holds exactly the dataset. Files arrive 0644 (0755 if executable),
folders 0755.

Why here and not as Ansible tasks: a module run costs 0.35 to 0.5 s whatever the data (Python starts and
unpacks Ansible's module code), and a move was two of them, plus fetch and copy for a large dataset (stored
on the controller, hashed at both ends of each copy). A small dataset's commands go through the host's SSH
master that Ansible's runs share (the inventory's options, ControlPath in ANSIBLE_SSH_CONTROL_PATH_DIR); a
large one (over STREAM_ALONE bytes) gets a connection of its own per end without compression, because the
master was opened with -C (zlib on one core for every byte), with the same user, key, port and host-key
checks, so that a gigabyte costs what `ssh source tar c | ssh target tar x` costs."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.plugins.action import ActionBase

STREAM_ALONE = 4 * 1024 * 1024
# every file's checksum, one line each, in a stable order (orchestrator/catalogue/digest.py reads the same)
MANIFEST = "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --"

# $1: the source. Prints its size in bytes, then its manifest.
SURVEY = f"""
[ -e "$1" ] || {{ echo "no such file or folder: $1" >&2; exit 1; }}
if [ -d "$1" ]; then
  cd -- "$1" && du -sb . | cut -f1 && {MANIFEST}
else
  dir=${{1%/*}}
  cd -- "${{dir:-/}}" && wc -c < "./${{1##*/}}" && sha256sum -- "./${{1##*/}}"
fi
"""
# $1: the source. Writes it as a tar stream (a folder's content, or the one file).
SEND = """
if [ -d "$1" ]; then cd -- "$1" && exec tar -cf - .; fi
dir=${1%/*}
cd -- "${dir:-/}" && exec tar -cf - "./${1##*/}"
"""
# $1: the target, $2: the sha256 of the source's manifest. Unpacks the stream into a new folder next to the
# target, checks it, swaps it in. Exit 3: the files are not the source's (stdout: the target's manifest).
RECEIVE = f"""
set -e
TARGET=$1
if [ -e "$TARGET" ] && [ ! -d "$TARGET" ]; then echo "$TARGET exists and is not a folder" >&2; exit 1; fi
if [ -n "$HOME" ] && [ "$TARGET" -ef "$HOME" ]; then
  echo "$TARGET is the home folder: refused (the target is replaced by the dataset)" >&2; exit 1
fi
parent=${{TARGET%/*}}
mkdir -p -- "${{parent:-/}}"
NEW=$(mktemp -d -- "${{parent}}/.${{TARGET##*/}}.orch-XXXXXX")
trap 'rm -rf -- "$NEW" "$NEW.old"' EXIT
trap 'exit 1' HUP INT TERM PIPE
tar -xf - --no-same-owner -C "$NEW"
chmod -R u=rwX,go=rX -- "$NEW"
actual=$(cd -- "$NEW" && {MANIFEST})
if [ "$(printf '%s' "$actual" | sha256sum | cut -d' ' -f1)" != "$2" ]; then printf '%s\\n' "$actual"; exit 3; fi
if [ -e "$TARGET" ]; then mv -T -- "$TARGET" "$NEW.old"; fi
if ! mv -T -- "$NEW" "$TARGET"; then
  if [ -e "$NEW.old" ]; then mv -T -- "$NEW.old" "$TARGET"; fi
  exit 1
fi
"""
# ssh keeps the first value it is given for an option: these come before the inventory's own options.
ALONE = ("ControlMaster=no", "ControlPath=none", "Compression=no")
UNREACHABLE = 255  # ssh's own exit code when it could not connect (or lost the connection)


def end_argv(host: dict | None, script: str, args: list[str], alone: bool = False) -> list[str]:
    """The command that runs `script` with `args` as $1... at one end: here, or over SSH on its host."""
    if not host or host.get("ansible_connection") == "local":
        return ["sh", "-c", script, "sh", *args]
    if host.get("ansible_connection") != "ssh":
        raise AnsibleActionFail(f"the embedded mover moves over ssh, not {host.get('ansible_connection')!r}")
    argv = ["ssh"]
    control_dir = os.environ.get("ANSIBLE_SSH_CONTROL_PATH_DIR")
    if alone or not control_dir:
        for option in ALONE:
            argv += ["-o", option]
    else:  # the master Ansible's runs share: its options without -C, which only a new master would take
        argv += [a for a in shlex.split(str(host.get("ansible_ssh_args") or "")) if a != "-C"]
        argv += ["-o", f"ControlPath={control_dir}/%C"]
    argv += shlex.split(str(host.get("ansible_ssh_common_args") or ""))
    if host.get("ansible_port"):
        argv += ["-p", str(host["ansible_port"])]
    if host.get("ansible_user"):
        argv += ["-l", str(host["ansible_user"])]
    if host.get("ansible_ssh_private_key_file"):
        argv += ["-i", str(host["ansible_ssh_private_key_file"])]
    argv += ["--", str(host["ansible_host"]), shlex.join(["sh", "-c", script, "sh", *args])]
    return argv


def _over_ssh(host: dict | None) -> bool:
    return bool(host) and host.get("ansible_connection") == "ssh"


def _said(stream) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", "replace").strip()


def _failed(end: str, path: str, code: int, said: str) -> Exception:
    message = f"the move failed at the {end} ({path}): {said or f'exit {code}'}"
    return AnsibleConnectionFailure(message) if code == UNREACHABLE else AnsibleActionFail(message)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        try:
            source, target = dict(self._task.args["source"]), dict(self._task.args["target"])
            source_path, target_path = str(source["path"]), str(target["path"])
        except (KeyError, TypeError, ValueError) as missing:
            raise AnsibleActionFail(f"eflows_stream needs a source and a target, each with a path: {missing}") \
                from None
        # The target's SSH master, if it has none yet, is opened while the source is surveyed: two handshakes
        # at once instead of one after the other (what it says does not matter: the stream's own command does).
        warming = None
        if _over_ssh(target.get("host")) and os.environ.get("ANSIBLE_SSH_CONTROL_PATH_DIR"):
            warming = subprocess.Popen(end_argv(target.get("host"), "true", []), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            surveyed = subprocess.run(end_argv(source.get("host"), SURVEY, [source_path]),
                                      stdin=subprocess.DEVNULL, capture_output=True, check=False)
        finally:
            if warming is not None:
                warming.wait()
        lines = surveyed.stdout.decode("utf-8", "replace").splitlines()
        if surveyed.returncode != 0 or not lines or not lines[0].strip().isdigit():
            raise _failed("source", source_path, surveyed.returncode,
                          surveyed.stderr.decode("utf-8", "replace").strip())
        size, manifest = int(lines[0]), lines[1:]
        # of the bytes the target's shell will hash: a name that is not UTF-8 must not make the digests differ
        digest = hashlib.sha256(surveyed.stdout.partition(b"\n")[2].rstrip(b"\n")).hexdigest()
        alone = size > STREAM_ALONE
        send = end_argv(source.get("host"), SEND, [source_path], alone)
        receive = end_argv(target.get("host"), RECEIVE, [target_path, digest], alone)
        # the ends' messages go to files: a pipe nobody reads while the data flows could stall an end
        with tempfile.TemporaryFile() as sender_said, tempfile.TemporaryFile() as receiver_said:
            sending = subprocess.Popen(send, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sender_said)
            try:
                receiving = subprocess.run(receive, stdin=sending.stdout, stdout=subprocess.PIPE,
                                           stderr=receiver_said, check=False)
            finally:
                sending.stdout.close()
                sent = sending.wait()
            result.update(changed=receiving.returncode == 0, manifest=manifest, size=size)
            if receiving.returncode == 3:
                arrived = receiving.stdout.decode("utf-8", "replace").splitlines()
                differ = sorted(set(manifest).symmetric_difference(arrived))
                what = self._task.args.get("mismatch") or f"the data at {target_path} is not the data of {source_path}"
                result.update(changed=False, failed=True, arrived=arrived,
                              msg=f"{what} (the target is left as it was): the checksums differ for {differ}")
                return result
            if receiving.returncode != 0:
                said = _said(receiver_said)
                if sent != 0 and _said(sender_said):  # the source stopped first (not just cut off after the target)
                    said += f"; the source ({source_path}) said: {_said(sender_said)}"
                raise _failed("target", target_path, receiving.returncode, said)
            # (a source that ended badly after sending what the target checked as its files: the move is right)
            return result
