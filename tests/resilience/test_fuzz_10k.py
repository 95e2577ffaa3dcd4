"""10,000 fuzzed bodies against one app: no 5xx, and nothing in the store but well-formed state.

The strategies and the checks are tests/vapi/test_fuzz.py's; here every family runs against
the same app and store (in-process, memory store), so the state of 10,000 bodies is checked
together at the end.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vapi.test_fuzz import CONFIG, CONTENT_TYPES, FAMILIES, check_answer, check_store
from vapi_bridge import create_app

# Near-valid messages (the ones that reach the store) cost 3x the others to generate.
EXAMPLES = {"bytes": 2500, "json": 2500, "messages": 4800, "oversized": 200}


def test_ten_thousand_bodies():
    assert sum(EXAMPLES.values()) == 10_000 and set(EXAMPLES) == set(FAMILIES)
    app = create_app({**CONFIG, "LOG_LEVEL": "WARNING"})  # 10,000 requests' INFO lines cost
    client = app.test_client()
    statuses: Counter = Counter()
    for family, examples in EXAMPLES.items():
        bodies = FAMILIES[family][0]

        @settings(max_examples=examples, deadline=None, database=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES))
        def post_anything(body: bytes, content_type: str | None) -> None:
            statuses[check_answer(client, body, content_type)] += 1

        post_anything()

    stored = check_store(app)
    print(f"\nfuzz: {sum(statuses.values())} bodies, answers {dict(statuses)},"
          f" stored {dict(stored)}")
    assert sum(statuses.values()) >= 10_000
    assert statuses[200] and statuses[400] and statuses[413]
    assert stored["metadata"] and stored["status"]
