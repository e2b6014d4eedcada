"""Python configure on the data host: what it was given and where it ran, as JSON in `path`."""
# ruff: noqa: SIM112 - the variables are the operation's inputs and outputs, named as the topology names them
import json
import os
import socket
import sys

path = os.environ["path"]
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w", encoding="utf-8") as report:
    json.dump({"environ": dict(os.environ), "uid": os.getuid(), "host": socket.gethostname(),
               "executable": sys.executable}, report)
os.environ["report_path"] = path
