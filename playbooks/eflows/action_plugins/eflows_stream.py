"""Action eflows_stream: the embedded mover's large dataset, as one tar stream from the source's host to the
target's, through this controller and never stored on it (`ssh source tar c | ssh target tar x`).

Arguments: `source` and `target`, each `{host: <its ORCH_HOSTS entry, or none for this controller>, path}`,
and `sender` and `receiver`, the shell scripts run at each end (move.yaml's: constants, no value in them).
Each script gets its end's path as "$1": a value reaches a shell only as an argument, quoted here for the
remote shell as Ansible quotes its own. The receiver prints the folder it unpacked into on its first line;
that is this task's stdout (move.yaml's `incoming`), checked and swapped in by the next task. On a failure
the action removes that folder again and fails, naming the end that failed and what it said.

Why not Ansible's fetch and copy: they store the dataset on the controller and write it twice, hash it with
sha1 at both ends of each copy, and go through the SSH master that Ansible opened with compression on (-C:
zlib on one core for every byte). Here each end gets a connection of its own, without compression, with
the same user, key, port and host-key checks as the inventory's (ORCH_HOSTS), so a gigabyte costs what
`tar | ssh | tar` costs."""

from __future__ import annotations

import shlex
import subprocess
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# ssh keeps the first value it is given for an option: these come before the inventory's own options.
STREAM_OPTIONS = ("ControlMaster=no", "ControlPath=none", "Compression=no")
CLEANUP = 'case "$1" in */.*.orch-*) rm -rf -- "$1" "$1.in" ;; esac'


def end_argv(host: dict | None, script: str, path: str) -> list[str]:
    """The command that runs `script` with `path` as $1 at one end: here, or over SSH on its host."""
    if not host or host.get("ansible_connection") == "local":
        return ["sh", "-c", script, "sh", path]
    if host.get("ansible_connection") != "ssh":
        raise AnsibleActionFail(f"the embedded mover streams over ssh, not {host.get('ansible_connection')!r}")
    argv = ["ssh"]
    for option in STREAM_OPTIONS:
        argv += ["-o", option]
    argv += shlex.split(str(host.get("ansible_ssh_common_args") or ""))
    if host.get("ansible_port"):
        argv += ["-p", str(host["ansible_port"])]
    if host.get("ansible_user"):
        argv += ["-l", str(host["ansible_user"])]
    if host.get("ansible_ssh_private_key_file"):
        argv += ["-i", str(host["ansible_ssh_private_key_file"])]
    argv += ["--", str(host["ansible_host"]), shlex.join(["sh", "-c", script, "sh", path])]
    return argv


def _said(stream) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", "replace").strip()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        try:
            source, target = dict(args["source"]), dict(args["target"])
            sender, receiver = str(args["sender"]), str(args["receiver"])
        except (KeyError, TypeError, ValueError) as missing:
            raise AnsibleActionFail(f"eflows_stream needs source, target, sender and receiver: {missing}") from None
        send = end_argv(source.get("host"), sender, str(source["path"]))
        receive = end_argv(target.get("host"), receiver, str(target["path"]))
        # the ends' messages go to files: a pipe nobody reads while the data flows could stall an end
        with tempfile.TemporaryFile() as sender_said, tempfile.TemporaryFile() as receiver_said:
            sending = subprocess.Popen(send, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sender_said)
            try:
                receiving = subprocess.run(receive, stdin=sending.stdout, stdout=subprocess.PIPE, stderr=receiver_said,
                                           check=False)
            finally:
                sending.stdout.close()
                sent = sending.wait()
            incoming = receiving.stdout.decode("utf-8", "replace").splitlines()[:1]
            if sent == 0 and receiving.returncode == 0 and incoming:
                result.update(changed=False, stdout=incoming[0])
                return result
            if incoming:
                subprocess.run(end_argv(target.get("host"), CLEANUP, incoming[0]), stdin=subprocess.DEVNULL,
                               capture_output=True, check=False)
            failures = []
            if receiving.returncode != 0:
                failures.append(f"at the target ({target['path']}): {_said(receiver_said) or 'no message'}")
            # a source that stopped silently after the target did was only cut off (a broken pipe)
            if sent != 0 and (_said(sender_said) or not failures):
                failures.append(f"at the source ({source['path']}): {_said(sender_said) or f'exit {sent}'}")
            raise AnsibleActionFail("the stream failed " + "; ".join(failures or ["at the target: no folder named"]))
