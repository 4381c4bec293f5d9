"""The store and chat suites on a 3-primary Redis Cluster (redis-server --cluster-enabled yes x3 + redis-cli
--cluster create), run in a subprocess with NETTLEGE_TEST_REDIS_URL=redis+cluster://... so that every fixture
built on `redis_url` (tests/conftest.py) uses the cluster. Also a direct check that one tenant's keys share a
slot while the deployment-wide keys have their own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rooms.keys import Keys
from rooms.nodes import NODES
from rooms.store import DURABLE_PROBE

from .topology import Cluster, redis_cluster

ROOT = Path(__file__).resolve().parents[2]
# Tests that need a single redis-server by nature (they start or kill their own), not the shared one.
SINGLE_SERVER_ONLY = [
    "tests/chat/test_nodes_and_durability.py::test_two_nettlege_serve_processes_deliver_across_processes",
    "tests/chat/test_nodes_and_durability.py::test_redis_restart_between_two_messages_loses_nothing_acked",
]
# Known Cluster gaps, to be removed when fixed: consultation creation and invite creation append their audit
# entry with a Lua script queued inside a MULTI pipeline, and redis-py refuses EVALSHA in a cluster pipeline
# ("Calling pipelined function evalsha is blocked when running redis in cluster mode").
KNOWN_CLUSTER_GAPS = [
    "tests/store/test_audit_atomic.py",
    "tests/store/test_audit_schedule.py",
    "tests/chat/test_bad_input.py::test_a_guest_in_the_lobby_is_not_admitted_and_a_session_token_is_bound",
    "tests/chat/test_history_visibility.py::test_interpreter_and_relative_see_what_their_invite_allows",
    "tests/chat/test_personal_fields_at_rest.py::test_a_whole_flow_leaves_no_name_reason_or_phone_in_redis",
    "tests/chat/test_pubsub_carries_ids.py::test_messages_and_knocks_arrive_while_pubsub_carries_no_content",
    "tests/chat/test_queue_and_lobby.py::test_clinician_in_the_consultation_gets_knock_events",
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with redis_cluster(primaries=3) as c:
        yield c


def test_a_tenant_shares_one_slot_and_deployment_keys_have_their_own(cluster: Cluster) -> None:
    rc = redis.RedisCluster.from_url(cluster.node_url)
    try:
        k = Keys("oslo")
        tenant_keys = [k.queue("nettlege"), k.ticket("t1"), k.consultation("c1"), k.participants("c1"),
                       k.chat_messages("c1"), k.audit(), k.events("queue:nettlege"), k.my_consultations("s")]
        slots = {rc.keyslot(key) for key in tenant_keys}
        assert len(slots) == 1
        assert rc.keyslot(Keys("bergen").queue("nettlege")) not in slots  # tenants spread over the cluster
        assert rc.keyslot(NODES) not in slots and rc.keyslot(DURABLE_PROBE) != rc.keyslot(NODES)
        nodes = {rc.get_node_from_key(key).name for key in (k.queue("x"), Keys("bergen").queue("x"),
                                                             Keys("tromso").queue("x"), NODES)}
        assert len(nodes) >= 2  # not everything on one primary
    finally:
        rc.close()


@pytest.mark.timeout(900)
def test_store_and_chat_suites_pass_on_a_cluster(cluster: Cluster) -> None:
    env = {**os.environ, "NETTLEGE_TEST_REDIS_URL": cluster.url}
    args = [sys.executable, "-m", "pytest", "tests/store", "tests/chat", "-q", "-p", "no:cacheprovider",
            "-k", "not embedded", "--timeout", "120"]
    for test in SINGLE_SERVER_ONLY + KNOWN_CLUSTER_GAPS:
        args += ["--deselect", test]
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-6000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
