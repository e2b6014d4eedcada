"""Runs `python -m orchestrator.cli ARGS` for each request on stdin, in a child forked from one process that has
already imported orch (a CLI start is mostly its imports): the tests below start a hundred of them."""

import json
import os
import runpy
import select
import sys
import traceback

import orchestrator.cli  # noqa: F401 - imported once, before the forks

running: dict[int, str] = {}


def child(request: dict) -> None:
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            opened = os.open(path, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        sys.argv = ["orch", *request["args"]]
        try:
            runpy.run_module("orchestrator.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - shown as `python -m` would show it
            traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> None:
    stdin = sys.stdin.buffer
    pending = b""
    closed = False
    while not closed or running:
        if not closed and select.select([stdin], [], [], 0.02)[0]:
            chunk = os.read(stdin.fileno(), 65536)
            closed = not chunk
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                sys.stdout.flush()
                pid = os.fork()
                if pid == 0:
                    child(request)
                running[pid] = request["id"]
        elif closed:
            select.select([], [], [], 0.02)
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            print(json.dumps({"id": running.pop(pid), "rc": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
