"""Python create, in the same batch as produce.sh: its own script, its own values."""
import json
import os

with open(os.environ["report"], "w", encoding="utf-8") as report:
    json.dump(dict(os.environ), report)
os.environ["SIBLING_SAID"] = os.environ["greeting"]
