"""The deployment store: the one module that owns SQL.

SQLite in WAL mode under $ORCH_HOME. Every state change is one transaction, and an operation is
recorded as started before it runs and done/failed after, so a crash leaves a precise resume point.
One connection per Store, shared by the engine's threads behind a lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from orchestrator.home import default_home
from orchestrator.owner import OwnerToken
from orchestrator.scratch import process_start_time
from orchestrator.store.base import (
    Deployment,
    DeploymentBusy,
    Event,
    Execution,
    Exposed,
    Lock,
    OperationRun,
    StoreError,
    User,
    UserExecution,
    UserKey,
)

__all__ = ["Deployment", "DeploymentBusy", "Event", "Execution", "Exposed", "Lock", "OperationRun", "SqliteStore",
           "Store", "StoreError", "User", "UserExecution", "UserKey", "default_home", "process_start_time"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
  name TEXT PRIMARY KEY,
  topology_path TEXT NOT NULL,
  template_file TEXT NOT NULL,
  inputs TEXT NOT NULL,
  status TEXT NOT NULL,
  created REAL NOT NULL,
  updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS locks (
  deployment TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  process_start TEXT NOT NULL,
  command TEXT NOT NULL,
  since REAL NOT NULL,
  owner TEXT NOT NULL DEFAULT '',
  execution_id TEXT
);
CREATE TABLE IF NOT EXISTS instances (
  deployment TEXT NOT NULL,
  node TEXT NOT NULL,
  state TEXT NOT NULL,
  updated REAL NOT NULL,
  PRIMARY KEY (deployment, node)
);
CREATE TABLE IF NOT EXISTS attributes (
  deployment TEXT NOT NULL,
  node TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (deployment, node, name)
);
CREATE TABLE IF NOT EXISTS executions (
  id TEXT PRIMARY KEY,
  deployment TEXT NOT NULL,
  workflow TEXT NOT NULL,
  status TEXT NOT NULL,
  inputs TEXT NOT NULL,
  started REAL NOT NULL,
  ended REAL,
  error TEXT,
  outputs TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS executions_by_deployment ON executions (deployment, started);
CREATE TABLE IF NOT EXISTS steps (
  execution_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  status TEXT NOT NULL,
  updated REAL NOT NULL,
  PRIMARY KEY (execution_id, step_id)
);
CREATE TABLE IF NOT EXISTS operation_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  execution_id TEXT NOT NULL,
  deployment TEXT NOT NULL,
  step_id TEXT NOT NULL,
  node TEXT NOT NULL,
  operation TEXT NOT NULL,
  host TEXT,
  status TEXT NOT NULL,
  started REAL NOT NULL,
  ended REAL,
  outputs TEXT,
  error TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_node ON operation_runs (deployment, node, operation, id);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  deployment TEXT NOT NULL,
  execution_id TEXT,
  ts REAL NOT NULL,
  kind TEXT NOT NULL,
  node TEXT,
  operation TEXT,
  message TEXT NOT NULL,
  data TEXT
);
CREATE INDEX IF NOT EXISTS events_by_execution ON events (deployment, execution_id, id);
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  admin INTEGER NOT NULL,
  created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS exposed (
  name TEXT PRIMARY KEY,
  deployment TEXT NOT NULL,
  workflow TEXT NOT NULL,
  created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS user_keys (
  id TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  credential TEXT NOT NULL,
  created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS user_executions (
  execution_id TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  exposed TEXT NOT NULL,
  key_id TEXT,
  created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS user_executions_by_user ON user_executions (user, created);
"""


def _owner_is_live(row: sqlite3.Row | None) -> bool:
    if not row:
        return False
    token = OwnerToken.parse(row["owner"] or "")
    if token is None:  # a lock written before owner tokens: judged by its pid
        return process_start_time(row["pid"]) == row["process_start"]
    return token.is_live()


def _refuse_if_held(row: sqlite3.Row | None, deployment: str) -> None:
    if row and _owner_is_live(row):
        since = time.strftime("%H:%M:%S", time.localtime(row["since"]))
        raise DeploymentBusy(f"deployment '{deployment}' is busy: '{row['command']}' is running "
                             f"(pid {row['pid']}, since {since})")


class SqliteStore:
    """The Store protocol (store/base.py) on SQLite."""

    def __init__(self, home: Path):
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.path = home / "orch.db"
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)
        _add_missing_columns(self._conn)
        os.chmod(self.path, 0o600)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _tx(self):
        return _Transaction(self._conn, self._lock)

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- deployments ---------------------------------------------------------------------------

    def create_or_update_deployment(self, name: str, topology_path: str, template_file: str,
                                    inputs: dict[str, Any], status: str) -> None:
        now = time.time()
        with self._tx() as c:
            c.execute(
                "INSERT INTO deployments (name, topology_path, template_file, inputs, status, created, updated)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET topology_path=excluded.topology_path,"
                " template_file=excluded.template_file, inputs=excluded.inputs, status=excluded.status,"
                " updated=excluded.updated",
                (name, topology_path, template_file, json.dumps(inputs), status, now, now))

    def set_deployment_status(self, name: str, status: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE deployments SET status=?, updated=? WHERE name=?", (status, time.time(), name))

    def deployment(self, name: str) -> Deployment | None:
        rows = self._query("SELECT * FROM deployments WHERE name=?", (name,))
        return _deployment(rows[0]) if rows else None

    def deployments(self) -> list[Deployment]:
        return [_deployment(r) for r in self._query("SELECT * FROM deployments ORDER BY name")]

    def delete_deployment(self, name: str) -> None:
        with self._tx() as c:
            for table in ("instances", "attributes", "operation_runs", "events"):
                c.execute(f"DELETE FROM {table} WHERE deployment=?", (name,))  # fixed names
            c.execute("DELETE FROM steps WHERE execution_id IN (SELECT id FROM executions WHERE deployment=?)",
                      (name,))
            c.execute("DELETE FROM executions WHERE deployment=?", (name,))
            c.execute("DELETE FROM deployments WHERE name=?", (name,))

    # -- locks: one command at a time per deployment, across processes ------------------------

    def acquire(self, deployment: str, command: str) -> str:
        """Take the deployment's lock for one piece of work; returns the owner token that releases it.
        Refused (DeploymentBusy) while a live owner, of this process or another, holds it."""
        owner = OwnerToken.new()
        with self._tx() as c:
            _refuse_if_held(c.execute("SELECT * FROM locks WHERE deployment=?", (deployment,)).fetchone(), deployment)
            c.execute("INSERT OR REPLACE INTO locks (deployment, pid, process_start, command, since, owner)"
                      " VALUES (?,?,?,?,?,?)", (deployment, owner.pid, owner.start, command, time.time(), str(owner)))
        return str(owner)

    def lock_execution(self, deployment: str, owner: str, execution_id: str) -> None:
        """Name the execution the lock's work runs: a running execution the live lock does not name is
        interrupted."""
        with self._tx() as c:
            c.execute("UPDATE locks SET execution_id=? WHERE deployment=? AND owner=?",
                      (execution_id, deployment, owner))

    def refuse_if_busy(self, deployment: str) -> None:
        """Raise DeploymentBusy, naming the command and its pid, when a live owner holds the lock."""
        rows = self._query("SELECT * FROM locks WHERE deployment=?", (deployment,))
        _refuse_if_held(rows[0] if rows else None, deployment)

    def lock(self, deployment: str) -> Lock | None:
        rows = self._query("SELECT * FROM locks WHERE deployment=?", (deployment,))
        if not rows:
            return None
        r = rows[0]
        return Lock(deployment, r["owner"], r["command"], r["since"], r["pid"], _owner_is_live(r), r["execution_id"])

    def lock_is_live(self, deployment: str) -> bool:
        rows = self._query("SELECT * FROM locks WHERE deployment=?", (deployment,))
        return _owner_is_live(rows[0] if rows else None)

    def release(self, deployment: str, owner: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM locks WHERE deployment=? AND owner=?", (deployment, owner))

    # -- instances and attributes --------------------------------------------------------------

    def set_state(self, deployment: str, node: str, state: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO instances (deployment, node, state, updated) VALUES (?,?,?,?)",
                      (deployment, node, state, time.time()))

    def states(self, deployment: str) -> dict[str, str]:
        return {r["node"]: r["state"] for r in
                self._query("SELECT node, state FROM instances WHERE deployment=?", (deployment,))}

    def set_attributes(self, deployment: str, node: str, values: dict[str, Any]) -> None:
        with self._tx() as c:
            c.executemany("INSERT OR REPLACE INTO attributes (deployment, node, name, value) VALUES (?,?,?,?)",
                          [(deployment, node, k, json.dumps(v)) for k, v in values.items()])

    def attribute(self, deployment: str, node: str, name: str) -> Any:
        rows = self._query("SELECT value FROM attributes WHERE deployment=? AND node=? AND name=?",
                           (deployment, node, name))
        return json.loads(rows[0]["value"]) if rows else None

    def attributes(self, deployment: str) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for r in self._query("SELECT node, name, value FROM attributes WHERE deployment=? ORDER BY node, name",
                             (deployment,)):
            result.setdefault(r["node"], {})[r["name"]] = json.loads(r["value"])
        return result

    # -- executions and their steps ------------------------------------------------------------

    def start_execution(self, execution_id: str, deployment: str, workflow: str, inputs: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO executions (id, deployment, workflow, status, inputs, started)"
                      " VALUES (?,?,?,?,?,?)",
                      (execution_id, deployment, workflow, "running", json.dumps(inputs), time.time()))

    def reopen_execution(self, execution_id: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE executions SET status='running', ended=NULL, error=NULL, outputs=NULL,"
                      " cancel_requested=0 WHERE id=?", (execution_id,))

    def queue_execution(self, execution_id: str, deployment: str, workflow: str, inputs: dict[str, Any], *,
                        owner: UserExecution | None = None) -> None:
        """An execution that waits its turn (`started` is when it was queued, until claim_queued), with the
        service user it belongs to in the same transaction: none is ever queued without its owner."""
        now = time.time()
        with self._tx() as c:
            c.execute("INSERT INTO executions (id, deployment, workflow, status, inputs, started)"
                      " VALUES (?,?,?,?,?,?)", (execution_id, deployment, workflow, "queued", json.dumps(inputs), now))
            if owner is not None:
                c.execute("INSERT INTO user_executions (execution_id, user, exposed, key_id, created)"
                          " VALUES (?,?,?,?,?)", (execution_id, owner.user, owner.exposed, owner.key_id, now))

    def queued_executions(self) -> list[Execution]:
        """Every queued execution, oldest first (rowid: two queued in the same clock tick keep their order)."""
        return [_execution(r) for r in self._query("SELECT * FROM executions WHERE status='queued' ORDER BY rowid")]

    def claim_queued(self, execution_id: str) -> bool:
        """Turn a queued execution into a running one; False if it is no longer queued (cancelled, or
        claimed by another server): exactly one claimer wins."""
        with self._tx() as c:
            return c.execute("UPDATE executions SET status='running', started=? WHERE id=? AND status='queued'",
                             (time.time(), execution_id)).rowcount == 1

    def end_queued(self, execution_id: str, status: str, error: str, event: tuple[str, str]) -> bool:
        """End an execution that never started (cancelled, or refused when its turn came); False if it is no
        longer queued (it started meanwhile)."""
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT deployment FROM executions WHERE id=? AND status='queued'",
                            (execution_id,)).fetchone()
            if row is None:
                return False
            c.execute("UPDATE executions SET status=?, ended=?, error=? WHERE id=?", (status, now, error, execution_id))
            c.execute("INSERT INTO events (deployment, execution_id, ts, kind, message) VALUES (?,?,?,?,?)",
                      (row["deployment"], execution_id, now, event[0], event[1]))
            return True

    def end_execution(self, execution_id: str, status: str, error: str | None = None, *,
                      outputs: dict[str, Any] | None = None, deployment_status: str | None = None,
                      event: tuple[str, str] | None = None) -> None:
        """The end of an execution in one transaction: its status and error, its outputs (kept only
        for an execution that succeeded), the deployment's new status and the closing event. A crash
        can never leave the execution done and its deployment still deploying."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE executions SET status=?, ended=?, error=?, outputs=? WHERE id=?",
                      (status, now, error, json.dumps(outputs) if outputs is not None else None, execution_id))
            row = c.execute("SELECT deployment FROM executions WHERE id=?", (execution_id,)).fetchone()
            if row and deployment_status is not None:
                c.execute("UPDATE deployments SET status=?, updated=? WHERE name=?",
                          (deployment_status, now, row["deployment"]))
            if row and event is not None:
                c.execute("INSERT INTO events (deployment, execution_id, ts, kind, message) VALUES (?,?,?,?,?)",
                          (row["deployment"], execution_id, now, event[0], event[1]))

    def request_cancel(self, execution_id: str) -> None:
        """Asked from another process: the one running the execution sees it and cancels."""
        with self._tx() as c:
            c.execute("UPDATE executions SET cancel_requested=1 WHERE id=?", (execution_id,))

    def cancel_requested(self, execution_id: str) -> bool:
        rows = self._query("SELECT cancel_requested FROM executions WHERE id=?", (execution_id,))
        return bool(rows and rows[0]["cancel_requested"])

    def execution(self, execution_id: str) -> Execution | None:
        rows = self._query("SELECT * FROM executions WHERE id=?", (execution_id,))
        return _execution(rows[0]) if rows else None

    def executions(self, deployment: str) -> list[Execution]:
        return [_execution(r) for r in
                self._query("SELECT * FROM executions WHERE deployment=? ORDER BY started", (deployment,))]

    def step_statuses(self, execution_id: str) -> dict[str, str]:
        return {r["step_id"]: r["status"] for r in
                self._query("SELECT step_id, status FROM steps WHERE execution_id=?", (execution_id,))}

    def set_step_status(self, execution_id: str, step_id: str, status: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO steps (execution_id, step_id, status, updated) VALUES (?,?,?,?)",
                      (execution_id, step_id, status, time.time()))

    # -- operation runs ------------------------------------------------------------------------

    def operation_started(self, execution_id: str, deployment: str, step_id: str, node: str, operation: str,
                          host: str | None, running_state: str | None) -> int:
        """One transaction: the run is recorded, the step marked running, the node's state moved."""
        now = time.time()
        with self._tx() as c:
            cur = c.execute("INSERT INTO operation_runs (execution_id, deployment, step_id, node, operation, host,"
                            " status, started) VALUES (?,?,?,?,?,?,?,?)",
                            (execution_id, deployment, step_id, node, operation, host, "started", now))
            c.execute("INSERT OR REPLACE INTO steps (execution_id, step_id, status, updated) VALUES (?,?,?,?)",
                      (execution_id, step_id, "running", now))
            if running_state:
                c.execute("INSERT OR REPLACE INTO instances (deployment, node, state, updated) VALUES (?,?,?,?)",
                          (deployment, node, running_state, now))
            return int(cur.lastrowid)

    def operation_done(self, run_id: int, execution_id: str, deployment: str, step_id: str, node: str,
                       outputs: dict[str, Any], attributes: dict[str, Any], state: str | None) -> None:
        """One transaction: outputs, attributes set by the operation, the step done, the node's new state."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE operation_runs SET status='done', ended=?, outputs=? WHERE id=?",
                      (now, json.dumps(outputs), run_id))
            c.executemany("INSERT OR REPLACE INTO attributes (deployment, node, name, value) VALUES (?,?,?,?)",
                          [(deployment, node, k, json.dumps(v)) for k, v in attributes.items()])
            c.execute("INSERT OR REPLACE INTO steps (execution_id, step_id, status, updated) VALUES (?,?,?,?)",
                      (execution_id, step_id, "done", now))
            if state:
                c.execute("INSERT OR REPLACE INTO instances (deployment, node, state, updated) VALUES (?,?,?,?)",
                          (deployment, node, state, now))

    def operation_failed(self, run_id: int, execution_id: str, step_id: str, error: str,
                         outputs: dict[str, Any] | None = None) -> None:
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE operation_runs SET status='failed', ended=?, error=?, outputs=? WHERE id=?",
                      (now, error, json.dumps(outputs or {}), run_id))
            c.execute("INSERT OR REPLACE INTO steps (execution_id, step_id, status, updated) VALUES (?,?,?,?)",
                      (execution_id, step_id, "failed", now))

    def interrupted_runs_to_failed(self, execution_id: str) -> int:
        """Runs left 'started' by a process that died: they did not finish, so they will run again."""
        with self._tx() as c:
            cur = c.execute("UPDATE operation_runs SET status='interrupted', ended=? WHERE execution_id=?"
                            " AND status='started'", (time.time(), execution_id))
            c.execute("UPDATE steps SET status='interrupted' WHERE execution_id=? AND status='running'",
                      (execution_id,))
            return cur.rowcount

    def operation_output(self, deployment: str, node: str, operation: str, output: str) -> Any:
        rows = self._query("SELECT outputs FROM operation_runs WHERE deployment=? AND node=? AND operation=?"
                           " AND status='done' ORDER BY id DESC LIMIT 1", (deployment, node, operation))
        if not rows or not rows[0]["outputs"]:
            return None
        return json.loads(rows[0]["outputs"]).get(output)

    def operation_runs(self, deployment: str, execution_id: str | None = None) -> list[OperationRun]:
        sql = "SELECT * FROM operation_runs WHERE deployment=?"
        args: tuple = (deployment,)
        if execution_id:
            sql += " AND execution_id=?"
            args += (execution_id,)
        return [_run(r) for r in self._query(sql + " ORDER BY id", args)]

    # -- events --------------------------------------------------------------------------------

    def add_event(self, deployment: str, execution_id: str | None, kind: str, message: str,
                  node: str | None = None, operation: str | None = None, data: dict[str, Any] | None = None) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO events (deployment, execution_id, ts, kind, node, operation, message, data)"
                      " VALUES (?,?,?,?,?,?,?,?)",
                      (deployment, execution_id, time.time(), kind, node, operation, message,
                       json.dumps(data) if data is not None else None))

    def events(self, deployment: str, execution_id: str | None = None, after_id: int = 0) -> list[Event]:
        sql = "SELECT * FROM events WHERE deployment=? AND id>?"
        args: tuple = (deployment, after_id)
        if execution_id:
            sql += " AND execution_id=?"
            args += (execution_id,)
        return [Event(r["id"], r["execution_id"], r["ts"], r["kind"], r["node"], r["operation"], r["message"],
                      json.loads(r["data"]) if r["data"] else None)
                for r in self._query(sql + " ORDER BY id", args)]

    # -- the service: users, exposed workflows, what belongs to whom ------------------------------

    def add_user(self, name: str, token_hash: str, admin: bool) -> None:
        with self._tx() as c:
            if c.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise StoreError(f"user '{name}' exists")
            c.execute("INSERT INTO users (name, token_hash, admin, created) VALUES (?,?,?,?)",
                      (name, token_hash, int(admin), time.time()))

    def user_by_token_hash(self, token_hash: str) -> User | None:
        rows = self._query("SELECT * FROM users WHERE token_hash=?", (token_hash,))
        return User(rows[0]["name"], bool(rows[0]["admin"]), rows[0]["created"]) if rows else None

    def users(self) -> list[User]:
        return [User(r["name"], bool(r["admin"]), r["created"])
                for r in self._query("SELECT * FROM users ORDER BY name")]

    def delete_user(self, name: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM users WHERE name=?", (name,))

    def expose(self, name: str, deployment: str, workflow: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO exposed (name, deployment, workflow, created) VALUES (?,?,?,?)",
                      (name, deployment, workflow, time.time()))

    def unexpose(self, name: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM exposed WHERE name=?", (name,))

    def exposed(self) -> list[Exposed]:
        return [Exposed(r["name"], r["deployment"], r["workflow"], r["created"])
                for r in self._query("SELECT * FROM exposed ORDER BY name")]

    def add_user_key(self, key_id: str, user: str, credential: str) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO user_keys (id, user, credential, created) VALUES (?,?,?,?)",
                      (key_id, user, credential, time.time()))

    def user_keys(self, user: str) -> list[UserKey]:
        return [UserKey(r["id"], r["user"], r["credential"], r["created"])
                for r in self._query("SELECT * FROM user_keys WHERE user=? ORDER BY created", (user,))]

    def delete_user_key(self, key_id: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM user_keys WHERE id=?", (key_id,))

    def add_user_execution(self, execution_id: str, user: str, exposed: str, key_id: str | None) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO user_executions (execution_id, user, exposed, key_id, created)"
                      " VALUES (?,?,?,?,?)", (execution_id, user, exposed, key_id, time.time()))

    def user_executions(self, user: str | None = None) -> list[UserExecution]:
        sql, args = "SELECT * FROM user_executions", ()
        if user is not None:
            sql, args = sql + " WHERE user=?", (user,)
        return [_user_execution(r) for r in self._query(sql + " ORDER BY created", args)]

    def user_execution(self, execution_id: str) -> UserExecution | None:
        rows = self._query("SELECT * FROM user_executions WHERE execution_id=?", (execution_id,))
        return _user_execution(rows[0]) if rows else None

    def integrity_ok(self) -> bool:
        return self._query("PRAGMA integrity_check")[0][0] == "ok"


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT under the store's thread lock; ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self.conn, self.lock = conn, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """A store made by an older orch: add the columns it lacks (CREATE TABLE IF NOT EXISTS keeps its tables)."""
    have = {r["name"] for r in conn.execute("PRAGMA table_info(locks)")}
    for column, kind in (("owner", "TEXT NOT NULL DEFAULT ''"), ("execution_id", "TEXT")):
        if column not in have:
            conn.execute(f"ALTER TABLE locks ADD COLUMN {column} {kind}")


# the name the engine, the API and the tests use: the store orch ships
Store = SqliteStore


def _deployment(r: sqlite3.Row) -> Deployment:
    return Deployment(r["name"], r["topology_path"], r["template_file"], json.loads(r["inputs"]), r["status"],
                      r["created"], r["updated"])


def _execution(r: sqlite3.Row) -> Execution:
    return Execution(r["id"], r["deployment"], r["workflow"], r["status"], json.loads(r["inputs"]), r["started"],
                     r["ended"], r["error"], json.loads(r["outputs"]) if r["outputs"] else None)


def _user_execution(r: sqlite3.Row) -> UserExecution:
    return UserExecution(r["execution_id"], r["user"], r["exposed"], r["key_id"], r["created"])


def _run(r: sqlite3.Row) -> OperationRun:
    return OperationRun(r["id"], r["execution_id"], r["step_id"], r["node"], r["operation"], r["host"], r["status"],
                        r["started"], r["ended"], json.loads(r["outputs"]) if r["outputs"] else {}, r["error"])
