"""The execution queue's store rules, across connections (as two servers, or a server and a CLI, would
hold): a queued execution is claimed by exactly one, and once claimed it cannot be cancelled as queued
(nor claimed again once it was cancelled); its owner is recorded with it, in one step."""

from __future__ import annotations

import threading

from orchestrator.store.base import UserExecution
from orchestrator.store.sqlite import Store


def test_each_queued_execution_is_claimed_by_exactly_one_of_several_racing_connections(tmp_path):
    first = Store(tmp_path)
    ids = [f"e{i:02d}" for i in range(30)]
    for execution_id in ids:
        first.queue_execution(execution_id, "wc", "exec_job", {})
    assert [e.id for e in first.queued_executions()] == ids  # oldest first
    stores = [Store(tmp_path) for _ in range(4)]
    won: list[list[str]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def claim_all(n: int) -> None:
        barrier.wait()
        won[n].extend(e for e in ids if stores[n].claim_queued(e))

    threads = [threading.Thread(target=claim_all, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [e for mine in won for e in mine]
    assert sorted(claimed) == ids, won  # every one, none twice
    assert first.queued_executions() == [] and {first.execution(e).status for e in ids} == {"running"}
    for store in (first, *stores):
        store.close()


def test_claimed_cannot_be_cancelled_as_queued_and_cancelled_cannot_be_claimed(tmp_path):
    store = Store(tmp_path)
    owner = UserExecution("q1", "alice", "wc@local@exec_job", None, 0.0)
    store.queue_execution("q1", "wc", "exec_job", {"message": "m"}, owner=owner)
    store.queue_execution("q2", "wc", "exec_job", {})
    assert store.user_execution("q1").user == "alice" and store.user_execution("q2") is None
    assert store.claim_queued("q1")
    assert not store.end_queued("q1", "cancelled", "too late", ("execution", "x"))
    assert store.execution("q1").status == "running"
    assert store.end_queued("q2", "cancelled", "cancelled before it started", ("execution", "cancelled"))
    assert not store.claim_queued("q2") and store.execution("q2").status == "cancelled"
    assert [e.message for e in store.events("wc", "q2")] == ["cancelled"]
    store.close()
