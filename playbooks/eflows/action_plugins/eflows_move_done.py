"""Action eflows_move_done: the embedded mover's last step on the controller, done inside Ansible's own
process: remove the move's staging folder and, with `record`, remember the target it wrote (one JSON line
in the node's record file, added once, 0600), for the undeploy's remove.yaml. Without `record` it only
removes the staging folder (after a failed move). With `report`, a mapping, sets those facts (the move's
report to orch), so that the move's last step is one task and not two.

An action and not a module because both are a few file operations on this controller: a module run would
start a Python process for them, the dearest task of a small move."""

from __future__ import annotations

import json
import os
import shutil

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        if not args.get("staging"):
            raise AnsibleActionFail("eflows_move_done needs staging")
        shutil.rmtree(str(args["staging"]), ignore_errors=True)
        result["changed"] = False
        if args.get("report"):
            result["ansible_facts"] = dict(args["report"])
        if not args.get("record"):
            return result
        if not args.get("path"):
            raise AnsibleActionFail("eflows_move_done needs the path it records")
        record = str(args["record"])
        line = json.dumps({"host": args.get("host") or None, "path": str(args["path"])})
        os.makedirs(os.path.dirname(record), exist_ok=True)
        try:
            with open(record, encoding="utf-8") as kept:
                known = line in kept.read().splitlines()
        except FileNotFoundError:
            known = False
        if not known:
            descriptor = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "a", encoding="utf-8") as kept:
                kept.write(line + "\n")
        os.chmod(record, 0o600)
        return result
