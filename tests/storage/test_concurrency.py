"""Exactly one winner among concurrent note claimers, across threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from vapi_bridge.config import settings_from_mapping
from vapi_bridge.storage import StateStore, create_backend


def test_64_threads_one_winner(store: StateStore):
    start = threading.Barrier(64)

    def claim(_):
        start.wait()
        return store.claim_note("call-race", "contact-1")

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(claim, range(64)))
    assert results.count(True) == 1
    assert results.count(False) == 63


def _claim_in_process(env, start, results):
    settings = settings_from_mapping(env)
    store = StateStore(create_backend(settings), prefix=settings.storage_prefix)
    start.wait()
    results.put(store.claim_note("call-race", "contact-1"))


@pytest.mark.parametrize("backend_env", ["redis", "kv-rest"], indirect=True)
def test_8_processes_one_winner(backend_env, prefix):
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(8), ctx.Queue()
    env = {**backend_env, "STATE_STORAGE_PREFIX": prefix}
    processes = [ctx.Process(target=_claim_in_process, args=(env, start, results))
                 for _ in range(8)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    assert outcomes.count(True) == 1
    assert outcomes.count(False) == 7
