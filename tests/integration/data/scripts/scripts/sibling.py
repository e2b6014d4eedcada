"""Python create, in the same batch as produce.sh: its own script, its own values."""
# ruff: noqa: SIM112 - the variables are the operation's inputs and outputs, named as the topology names them
import json
import os

with open(os.environ["report"], "w", encoding="utf-8") as report:
    json.dump(dict(os.environ), report)
os.environ["SIBLING_SAID"] = os.environ["greeting"]
