"""What only the dict backend must add: a bound, eviction of the oldest, a clock-driven TTL."""

from __future__ import annotations

import threading

from vapi_bridge.storage.memory import MemoryBackend


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_stays_bounded_and_evicts_the_oldest():
    backend = MemoryBackend(max_entries=100)
    for n in range(10_000):
        backend.set(f"k{n}", "v", ex=3600)
    assert len(backend) == 100
    assert backend.get("k9899") is None
    assert backend.get("k9900") == "v"


def test_a_rewrite_makes_a_key_young_again():
    backend = MemoryBackend(max_entries=3)
    for key in ("a", "b", "c"):
        backend.set(key, "1", ex=60)
    backend.set("a", "2", ex=60)
    backend.set("d", "1", ex=60)
    assert backend.get("b") is None
    assert backend.get("a") == "2"


def test_expiry_follows_the_clock():
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    backend.set("k", "v", ex=10)
    clock.now += 9.9
    assert backend.get("k") == "v"
    assert backend.ttl("k") == 1
    assert backend.set("k", "other", ex=10, nx=True) is False
    clock.now += 0.2
    assert backend.get("k") is None
    assert backend.set("k", "new", ex=10, nx=True) is True


def test_expired_keys_are_dropped_on_write_without_reads():
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    for n in range(500):
        backend.set(f"old{n}", "v", ex=5)
    clock.now += 6
    backend.set("new", "v", ex=5)
    assert len(backend) == 1


def test_writers_and_readers_in_threads_keep_the_bound():
    backend = MemoryBackend(max_entries=50)

    def work(n):
        for i in range(2000):
            backend.set(f"{n}-{i}", "v", ex=60)
            backend.get(f"{n}-{i - 1}")
            backend.delete_if_equals(f"{n}-{i - 2}", "v")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(backend) <= 50
