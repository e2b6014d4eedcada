#!/usr/bin/python
"""orch's runner of one Bash or Python implementation on its host, as Yorc runs scripts: the operation's
inputs and context are environment variables of the script, and what the script exports is reported as facts
(its operation outputs). The values arrive as module arguments (with pipelining, on the connection's stdin) and
reach the script only through its environment: no value is ever part of a command line, here or on the way.

- Bash: the script is sourced by a small wrapper, so the variables it exports remain visible after it; they
  are read when it ends, by `exit` (replaced by a function that reads them first) or by its last line.
- Python: the script runs in the wrapper's interpreter (runpy, as `python script.py` would run it); what it
  sets in os.environ is read when it ends, whatever way it ends.

Reported: every exported variable that the script added or changed, except those the shell keeps itself.
A non-zero exit fails the task with the end of the script's error output (a Python traceback from the
script's own frames)."""

from __future__ import annotations

import os
import shutil
import subprocess

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: orch_script
short_description: run a Bash or Python implementation with its values as environment, report its exports
description: Called by its action plugin (action_plugins/orch_script.py), which sends the files first.
options:
  kind: {description: bash or python, required: true, type: str, choices: [bash, python]}
  folder: {description: the script's own folder on the host (made here, removed after), required: true,
           type: path}
  files: {description: "[sent path or null for a folder, place in the folder, mode] of each file",
          type: list, elements: raw, default: []}
  script: {description: the script's place in the folder, required: true, type: str}
  values: {description: environment variables of the script (name to text), type: dict, default: {}}
  paths: {description: environment variables holding a place in the folder (made absolute), type: dict,
          default: {}}
  python: {description: the interpreter of Python scripts, type: str, default: python3}
"""

# $0 is the script (as if it had been run), $1 where its exports go. `exit` reads them before leaving.
# Each wrapper first notes the environment it starts with: an interpreter found through a shim (pyenv) or a
# shell's start files may have changed it, and that is not the script's doing.
BASH_WRAPPER = r"""__orch_exports=$1; shift
env -0 >"$__orch_exports.before"
exit() { local __orch_status=${1-$?}; env -0 >"$__orch_exports"; builtin exit "$__orch_status"; }
. "$0"
__orch_status=$?
env -0 >"$__orch_exports"
builtin exit "$__orch_status"
"""

PYTHON_WRAPPER = r"""import os, runpy, sys
_script, _exports = sys.argv[1], sys.argv[2]
with open(_exports + ".before", "wb") as _file:
    _file.write(b"".join(k + b"=" + v + b"\0" for k, v in os.environb.items()))
sys.argv = [_script]
sys.path[0] = os.path.dirname(_script)
try:
    runpy.run_path(_script, run_name="__main__")
except SystemExit:
    raise
except BaseException as _error:  # the traceback from the script's own frames: the wrapper's are noise
    import traceback
    _frames = _error.__traceback__
    while _frames is not None and _frames.tb_frame.f_code.co_filename != _script:
        _frames = _frames.tb_next
    traceback.print_exception(type(_error), _error, _frames or _error.__traceback__)
    sys.exit(1)
finally:
    with open(_exports, "wb") as _file:
        _file.write(b"".join(k + b"=" + v + b"\0" for k, v in os.environb.items()))
"""

# variables bash sets or changes on its own: not something the script exported
SHELL_OWN = {"PWD", "OLDPWD", "SHLVL", "_"}
# the controller's own settings (a local run inherits them from orch and Ansible): not the script's business
HIDDEN_PREFIXES = ("ANSIBLE_", "ORCH_")
KEEP = 100_000  # characters of output kept in the result


def environment_in(path: str) -> dict[str, str]:
    """NAME=VALUE entries, each ended by a NUL byte (what `env -0` writes)."""
    try:
        with open(path, "rb") as file:
            entries = file.read().split(b"\0")
    except OSError:
        return {}
    found = {}
    for entry in entries:
        name, sep, value = entry.partition(b"=")
        if sep:
            found[name.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return found


def exported(path: str) -> dict[str, str]:
    """What the script added to its environment or changed in it; and the id of the job a watch or a cancel
    was given, as the job playbooks report it back (the Runnable protocol reads it from each poll)."""
    before, after = environment_in(path + ".before"), environment_in(path)
    return {name: value for name, value in after.items()
            if name not in SHELL_OWN and (before.get(name) != value or name == "TOSCA_JOB_ID")}


def tail(text: str, lines: int = 20, chars: int = 1500) -> str:
    """The end of an output, from a line's start: what a failure message shows."""
    text = text.rstrip()
    if len(text) > chars:
        text = text[-chars:].partition("\n")[2] or text[-chars:]
    return "\n".join(text.splitlines()[-lines:])


def lay_out(folder: str, files: list) -> None:
    """The files the action plugin sent, moved to their places in the script's private folder."""
    os.makedirs(folder, mode=0o700)
    for sent, place, mode in files:
        where = os.path.join(folder, place)
        if sent is None:
            os.makedirs(where, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(where), exist_ok=True)
            os.replace(sent, where)
        os.chmod(where, int(mode))


def main() -> None:
    module = AnsibleModule(argument_spec={
        "kind": {"type": "str", "required": True, "choices": ["bash", "python"]},
        "folder": {"type": "path", "required": True},
        "files": {"type": "list", "elements": "raw", "default": []},
        "script": {"type": "str", "required": True},
        "values": {"type": "dict", "default": {}},
        "paths": {"type": "dict", "default": {}},
        "python": {"type": "str", "default": "python3"},
    })
    params = module.params
    folder = params["folder"]
    try:
        lay_out(folder, params["files"])
        run(module, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(module: AnsibleModule, folder: str) -> None:
    params = module.params
    name = params["script"]
    script = os.path.join(folder, name)
    given = {k: v for k, v in os.environ.items() if not k.startswith(HIDDEN_PREFIXES)}
    given["PWD"] = folder
    given.update({str(k): "" if v is None else str(v) for k, v in params["values"].items()})
    given.update({str(k): os.path.join(folder, str(v)) for k, v in params["paths"].items()})
    exports = os.path.join(folder, ".orch-exports")
    if params["kind"] == "bash":
        argv = ["bash", "-c", BASH_WRAPPER, script, exports]
    else:
        argv = [params["python"], "-c", PYTHON_WRAPPER, script, exports]
    try:
        done = subprocess.run(argv, env=given, cwd=folder, stdin=subprocess.DEVNULL, capture_output=True,
                              check=False)
    except OSError as exc:
        module.fail_json(msg=f"{name}: cannot start {argv[0]}: {exc}")
    stdout = done.stdout.decode("utf-8", "replace")[-KEEP:]
    stderr = done.stderr.decode("utf-8", "replace")[-KEEP:]
    if done.returncode != 0:
        how = f"was killed by signal {-done.returncode}" if done.returncode < 0 \
            else f"exited with code {done.returncode}"
        # the end of its error output (of its output, when it said nothing on stderr)
        said = {"stderr": tail(stderr)} if stderr.strip() else {"stdout": tail(stdout)}
        module.fail_json(msg=f"{name} {how}", rc=done.returncode, **said)
    module.exit_json(changed=True, rc=0, stdout=stdout, stderr=stderr, ansible_facts=exported(exports))


if __name__ == "__main__":
    main()
