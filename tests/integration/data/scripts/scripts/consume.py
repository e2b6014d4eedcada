"""Python configure: reads what the Bash create exported (inputs made and word), writes what it was given to
$report as JSON, and exports seen (an attribute of its node)."""
# ruff: noqa: SIM112 - the variables are the operation's inputs and outputs, named as the topology names them
import json
import os
import sys

from helper import shout

with open(os.environ["report"], "w", encoding="utf-8") as report:
    json.dump({"environ": dict(os.environ), "argv": sys.argv, "name": __name__,
               "executable": sys.executable}, report)
os.environ["seen"] = shout(os.environ["word"]) + " / " + os.environ["made"]
