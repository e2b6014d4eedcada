"""Ansible action `orch_exec`: run a command on the task's host through the task's own connection, no module.

A module run (`command`, `shell`) on an SSH host ships a Python program and starts an interpreter there:
0.35 to 0.5 s on our hosts whatever the command, several times what the command itself takes. orch's
scheduler tasks (a job's submit, a poll round, a cancel) are one short shell each, so they run it directly,
over the connection the play already has (the host's SSH master, the inventory's SSH options and host key
check; the controller's /bin/sh for a local host), as Ansible's `raw` does, with what `raw` lacks:

    orch_exec:
      argv: [sh, -c, "...", name, "$1", "$2"]   # joined with shlex: every value is one quoted word
      stdin: "..."                              # optional: sent on standard input, never on a command line
      env: { NAME: value }                      # optional: set for the command (through `env`, as words too)

Returns rc, stdout, stderr and their _lines, as `command` does; fails when rc is not 0. An SSH failure is
the connection's (unreachable), as for a module.

The schedulers' task files (../schedulers/) run from this folder's playbooks and from ../../eflows's, so the
eflows action_plugins folder holds a link to this file: Ansible looks for actions next to the playbook.
"""

from __future__ import annotations

import re
import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("argv", "stdin", "env"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        argv = self._task.args.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, (str, int)) for a in argv):
            raise AnsibleActionFail("orch_exec: argv must be a non-empty list of strings")
        env = self._task.args.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(k, str) and ENV_NAME.match(k) for k in env):
            raise AnsibleActionFail("orch_exec: env must map variable names to values")
        words = [str(a) for a in argv]
        if env:
            words = ["env", *(f"{name}={value}" for name, value in env.items()), *words]
        stdin = self._task.args.get("stdin")
        if stdin is not None and not str(stdin).endswith("\n"):
            stdin = f"{stdin}\n"  # as `command` sends it (stdin_add_newline)
        ran = self._low_level_execute_command(shlex.join(words), sudoable=False,
                                              in_data=None if stdin is None else str(stdin).encode())
        result.update(ran)
        result["changed"] = True
        if ran["rc"] != 0:
            result["failed"] = True
            result["msg"] = f"non-zero return code {ran['rc']}"
        return result
