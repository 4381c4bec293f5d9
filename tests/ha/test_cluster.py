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
from xml.etree import ElementTree

import pytest
import redis

from chat.keys import ChatKeys
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


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with redis_cluster(primaries=3) as c:
        yield c


def test_a_tenant_shares_one_slot_and_deployment_keys_have_their_own(cluster: Cluster) -> None:
    rc = redis.RedisCluster.from_url(cluster.node_url)
    try:
        k = Keys("oslo")
        tenant_keys = [k.queue("nettlege"), k.ticket("t1"), k.consultation("c1"), k.participants("c1"),
                       ChatKeys("oslo").messages("c1"), k.audit(), k.events("queue:nettlege"), k.my_consultations("s")]
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
def test_store_and_chat_suites_pass_on_a_cluster(cluster: Cluster, tmp_path: Path) -> None:
    report = tmp_path / "cluster-suites.xml"
    env = {**os.environ, "NETTLEGE_TEST_REDIS_URL": cluster.url}
    args = [sys.executable, "-m", "pytest", "tests/store", "tests/chat", "-q", "-p", "no:cacheprovider",
            "-k", "not embedded", "--timeout", "120", f"--junitxml={report}", "-o", "junit_logging=all"]
    for test in SINGLE_SERVER_ONLY:
        args += ["--deselect", test]
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert report.exists(), run.stdout[-4000:] + run.stderr[-2000:]
    passed, failed = [], []
    for case in ElementTree.parse(report).iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if case.find("skipped") is not None:
            continue
        (passed if bad is None else failed).append(name)
    assert not failed, f"failing on a Redis Cluster: {failed}\n{run.stdout[-6000:]}"
    assert len(passed) > 50, run.stdout[-4000:]
