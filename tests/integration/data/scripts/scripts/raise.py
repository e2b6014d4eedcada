"""Raises: the traceback's last line says why."""
raise RuntimeError("the Python script gave up on purpose")
