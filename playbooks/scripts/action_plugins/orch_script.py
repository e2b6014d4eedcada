"""The controller's half of orch_script (the module is library/orch_script.py): the script, its dependencies
and the node's artifacts are sent to Ansible's private temporary folder on the host, one transfer each over
the operation's own connection (no module run per file, as ansible.builtin.copy would make), then the module
runs the script among them. Ansible removes the temporary folder after the task."""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        script = str(args["script"])
        sent: list[list[Any]] = []  # [where it was sent (None: a folder to make), its place beside the script, mode]

        def send(local: str, place: str, mode: int | None = None) -> None:
            if not os.path.exists(local):
                raise AnsibleActionFail(f"{local} does not exist on the controller")
            if os.path.isdir(local):
                sent.append([None, place, os.stat(local).st_mode & 0o777])
                for entry in sorted(os.listdir(local)):
                    send(os.path.join(local, entry), f"{place}/{entry}")
                return
            remote = self._connection._shell.join_path(self._connection._shell.tmpdir, f"orch-file-{len(sent)}")
            self._transfer_file(local, remote)
            sent.append([remote, place, mode if mode is not None else os.stat(local).st_mode & 0o777])

        send(script, os.path.basename(script), 0o700)
        for dependency in args.get("dependencies") or []:
            send(str(dependency), os.path.basename(str(dependency).rstrip("/")))
        paths = {}
        for artifact in args.get("artifacts") or []:
            place = f"artifacts/{artifact['name']}/{os.path.basename(str(artifact['file']).rstrip('/'))}"
            send(str(artifact["file"]), place)
            paths[str(artifact["name"])] = place
        module_args = {"kind": args["kind"], "files": sent, "script": os.path.basename(script),
                       "folder": self._connection._shell.join_path(self._connection._shell.tmpdir, "script"),
                       "values": args.get("values") or {}, "paths": paths,
                       "python": args.get("python") or "python3"}
        result.update(self._execute_module(module_name="orch_script", module_args=module_args, task_vars=task_vars))
        return result
