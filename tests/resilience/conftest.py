"""A Redis of the test's own, to kill (SIGKILL) and start again on the same socket."""

from __future__ import annotations

import pytest

from tests.redis_server import RedisServer


class KillableRedis(RedisServer):
    def kill(self) -> None:
        """As a crash or an OOM kill would: no shutdown, the socket file left behind."""
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path):
    try:
        server = KillableRedis(tmp_path).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()
