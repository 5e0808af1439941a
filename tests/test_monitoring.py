"""Monitoring: the outbox, the documents against the strict index template, the sender
through opensearch-py's real client against a local endpoint that answers as
OpenSearch's bulk API does (tests/opensearch_endpoint.py: no OpenSearch server can run
here), a kill of the sender, a re-send, OpenSearch down, backfill, install, StatsD and
Airflow's OpenSearch remote logging."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from ctaoflow import settings
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import outbox
from ctaoflow.engine.ledger import (FileRow, OutboxRow, ProductionRow, TransformationRow,
                                    session_factory)
from ctaoflow.monitoring import documents
from ctaoflow.monitoring.sender import Sender
from ctaoflow.ops import operations
from tests.engine_driver import DATA, engine_for, run_all
from tests.opensearch_endpoint import Endpoint, mapping_errors

pytestmark = pytest.mark.opensearch
PROJECT = Path(__file__).parents[1]


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()


@pytest.fixture
def monitoring_on():
    outbox.enable(True)
    yield
    outbox.enable(None)


def outbox_rows() -> list[OutboxRow]:
    with session_factory()() as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def rendered() -> list[dict]:
    with session_factory()() as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
        return [a for _, a in documents.render(session, rows)]


def chain_with_failures() -> None:
    """The chain production, then the failing one (application failures), and operator
    actions: every kind of document."""
    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=12, proton=6)
    run_all(engine)
    failing = engine_for(DATA / "failing.yaml")
    run_all(failing)
    operations.stop(failing.production)
    operations.start(failing.production)
    operations.reset(failing.production, statuses=("Unused",))


def test_off_by_default_nothing_is_recorded(home: Path, monkeypatch) -> None:
    for name in outbox.ENV:
        monkeypatch.delenv(name, raising=False)
    assert not outbox.on()
    chain_with_failures()
    assert outbox_rows() == []


def test_documents_validate_against_the_strict_index_template(home, monitoring_on,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("CTAOFLOW_USER", "alice")
    chain_with_failures()
    actions = rendered()
    properties = documents.schema()
    template = json.loads(documents.TEMPLATE.read_text())
    assert template["template"]["mappings"]["dynamic"] == "strict"
    assert template["index_patterns"] == [f"{documents.PREFIX}-*"]
    for action in actions:
        assert mapping_errors(action["_source"], properties) == [], action
        assert action["_op_type"] == "create"
        assert action["_index"] == documents.index_name(action["_source"]["@timestamp"])
    docs = [a["_source"] for a in actions]
    kinds = {(d["kind"], d.get("state")) for d in docs}
    assert {("job", "Submitted"), ("job", "Done"), ("job", "Failed"), ("file", "Unused"),
            ("file", "Assigned"), ("file", "Processed"), ("production", "Completed"),
            ("event", "Completed"), ("event", "Stopped")} <= kinds, kinds
    failed = [d for d in docs if d["kind"] == "job" and d["state"] == "Failed"]
    assert failed and all(d["failure_class"] == "application" and d["exit_code"] == 3
                          and d["site"] == "local" and d["backend_id"] and
                          d["duration_s"] >= 0 for d in failed)
    assert {d["production"] for d in docs if "production" in d} == {"chain", "failing"}
    actions_by_hand = [d for d in docs if d["kind"] == "event" and d.get("user")]
    assert {d["event"] for d in actions_by_hand} == {"status", "reset"}
    assert {d["user"] for d in actions_by_hand} == {"alice"}
    # the Processed file documents add up to the ledger's Processed files, per transformation
    # (Processed is final: each file is counted once)
    processed: dict[tuple[str, str], int] = {}
    for d in docs:
        if d["kind"] == "file" and d["state"] == "Processed":
            key = (d["production"], d["transformation"])
            processed[key] = processed.get(key, 0) + d["files"]
    with session_factory()() as session:
        ledger = {(p, t): n for p, t, n in session.execute(
            select(ProductionRow.name, TransformationRow.name, func.count())
            .join(TransformationRow, TransformationRow.production_id == ProductionRow.id)
            .join(FileRow, FileRow.transformation_id == TransformationRow.id)
            .where(FileRow.status == "Processed")
            .group_by(ProductionRow.name, TransformationRow.name))}
    assert processed == ledger and processed[("chain", "process_gamma")] == 12
    # ids are unique and deterministic
    assert len({a["_id"] for a in actions}) == len(actions)
    assert rendered() == actions
    # the validator itself refuses what OpenSearch would
    assert mapping_errors({"kind": "job", "colour": "red"}, properties)
    assert mapping_errors({"exit_code": "3"}, properties)
    assert mapping_errors({"task": 2**40}, properties)
    assert mapping_errors({"@timestamp": "yesterday"}, properties)


def test_sender_sends_by_bulk_create_and_deletes_only_what_was_acknowledged(
        home, monitoring_on, endpoint) -> None:
    chain_with_failures()
    expected = {a["_id"]: a for a in rendered()}
    sender = Sender({"host": "127.0.0.1", "port": endpoint.port}, session_factory(),
                    batch=100)
    assert sender.drain() == len(expected)
    assert outbox_rows() == []
    got = endpoint.all_docs()
    assert got == {i: a["_source"] for i, a in expected.items()}
    bulks = endpoint.bulk_requests()
    assert len(bulks) == -(-len(expected) // 100)  # batches of 100
    first = [json.loads(line) for line in bulks[0]["body"].splitlines()]
    assert set(first[0]) == {"create"} and set(first[0]["create"]) == {"_index", "_id"}
    # in outbox order, i.e. in the order of the changes: the chain's first intake first
    sent = [json.loads(line)["create"]["_id"] for r in bulks
            for line in r["body"].splitlines()[::2]]
    assert sent == list(expected)
    assert first[1]["event"] == "intake" and first[3]["state"] == "Unused"


def test_a_resend_duplicates_nothing(home, monitoring_on, endpoint) -> None:
    chain_with_failures()
    kept = [{c.name: getattr(r, c.name) for c in OutboxRow.__table__.columns}
            for r in outbox_rows()]
    sender = Sender({"host": "127.0.0.1", "port": endpoint.port}, session_factory())
    sender.drain()
    before = endpoint.all_docs()
    # a sender killed after OpenSearch took the documents, before deleting the rows
    with session_factory().begin() as session:
        session.execute(insert(OutboxRow), kept)
    assert sender.drain() == len(kept)  # 409s count as acknowledged
    assert outbox_rows() == []
    assert endpoint.all_docs() == before
    assert set(endpoint.created.values()) == {1}
    sent = [json.loads(line)["create"]["_id"] for r in endpoint.bulk_requests()
            for line in r["body"].splitlines()[::2]]
    assert sorted(sent) == sorted(2 * list(before))  # each sent twice, stored once


def test_opensearch_down_keeps_the_backlog_warns_past_the_bound_and_sends_when_back(
        home, monitoring_on, endpoint, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="ctaoflow.monitoring")
    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=12, proton=6)
    run_all(engine)
    waiting = len(outbox_rows())
    endpoint.down = True
    sender = Sender({"host": "127.0.0.1", "port": endpoint.port}, session_factory(),
                    bound=waiting + 5)
    assert sender.drain() == 0 and sender.drain() == 0
    assert len(outbox_rows()) == waiting  # kept
    down = [r.message for r in caplog.records if "did not take" in r.message]
    assert len(down) == 1 and "503" in down[0]  # one line per outage
    # more changes while it is down: past the bound, the oldest go, with one warning
    operations.stop(engine.production)
    operations.start(engine.production)
    operations.stop(engine.production)
    operations.start(engine.production)
    assert len(outbox_rows()) > waiting + 5
    newest = outbox_rows()[-(waiting + 5):]
    sender.drain()
    sender.drain()
    assert [r.id for r in outbox_rows()] == [r.id for r in newest]
    bound = [r.message for r in caplog.records if "bound" in r.message]
    assert len(bound) == 1 and f"bound of {waiting + 5}" in bound[0]
    # back: everything kept is sent
    endpoint.down = False
    with session_factory()() as session:
        expected = {a["_id"] for _, a in documents.render(session, newest)}
    assert sender.drain() == waiting + 5
    assert outbox_rows() == []
    assert set(endpoint.all_docs()) == expected
    assert any("answers again" in r.message for r in caplog.records)


def test_the_backlog_survives_a_kill_of_the_sender(home, monitoring_on) -> None:
    chain_with_failures()
    expected = {a["_id"] for a in rendered()}
    slow = Endpoint(delay=0.3)  # each bulk request takes 0.3 s
    try:
        env = {**os.environ, "CTAOFLOW_OPENSEARCH": slow.url, "PYTHONPATH": str(PROJECT)}
        command = [sys.executable, "-m", "ctaoflow.cli", "monitoring", "send", "--batch", "20"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while len(slow.bulk_requests()) < 3:  # killed in the middle of its rounds
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        arrived = set(slow.all_docs())
        assert 0 < len(arrived) < len(expected)
        left = outbox_rows()
        assert left  # the backlog is in the ledger
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "0 waiting" in out.stdout
        assert outbox_rows() == []
        assert set(slow.all_docs()) == expected  # every document arrived
        assert set(slow.created) == expected and set(slow.created.values()) == {1}  # once
    finally:
        slow.close()


def test_backfill_replays_history_with_the_live_ids_and_twice_is_a_no_op(
        home, monitoring_on, endpoint) -> None:
    chain_with_failures()
    Sender({"host": "127.0.0.1", "port": endpoint.port}, session_factory()).drain()
    live = endpoint.all_docs()
    env = {**os.environ, "CTAOFLOW_OPENSEARCH": endpoint.url, "PYTHONPATH": str(PROJECT)}
    command = [sys.executable, "-m", "ctaoflow.cli", "monitoring", "backfill", "chain"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    after_first = endpoint.all_docs()
    replayed = {i for i in after_first if i not in live}
    # jobs and events had been sent live with the same ids: only snapshots are new
    assert replayed and all(":files:" in i or i.endswith(":production:now") for i in replayed)
    chain_jobs = {i for i, d in live.items() if d.get("production") == "chain"
                  and d["kind"] in ("job", "event")}
    assert f"{len(chain_jobs)} already there" in first.stdout
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert endpoint.all_docs() == after_first
    assert set(endpoint.created.values()) == {1}
    for doc in after_first.values():
        assert mapping_errors(doc, documents.schema()) == []


def test_backfill_of_a_production_that_ran_unmonitored(home, endpoint, monkeypatch) -> None:
    for name in outbox.ENV:
        monkeypatch.delenv(name, raising=False)
    engine = engine_for(DATA / "failing.yaml")
    register_demo_inputs(EmbeddedCatalog(settings.home() / "catalog"), gamma=5, proton=5)
    run_all(engine)
    assert outbox_rows() == []
    env = {**os.environ, "CTAOFLOW_OPENSEARCH": endpoint.url, "PYTHONPATH": str(PROJECT)}
    out = subprocess.run([sys.executable, "-m", "ctaoflow.cli", "monitoring", "backfill",
                          "failing"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    docs = endpoint.all_docs().values()
    jobs = [d for d in docs if d["kind"] == "job"]
    assert {d["state"] for d in jobs} == {"Submitted", "Done", "Failed"}
    assert sum(1 for d in jobs if d["state"] == "Failed") == 2  # 2 attempts of the gamma task
    assert {(d["state"], d["files"]) for d in docs if d["kind"] == "file"} == {
        ("Unused", 5), ("Processed", 5)}
    unknown = subprocess.run([sys.executable, "-m", "ctaoflow.cli", "monitoring", "backfill",
                              "nothing"], env=env, capture_output=True, text=True)
    assert unknown.returncode == 1 and "not in the ledger" in unknown.stderr


def test_install_puts_the_template_and_the_policy(endpoint, monkeypatch) -> None:
    monkeypatch.setenv("CTAOFLOW_OPENSEARCH",
                       endpoint.url.replace("http://", "http://admin:s3cret@"))
    command = [sys.executable, "-m", "ctaoflow.cli", "monitoring", "install"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "s3cret" not in first.stdout + first.stderr and "admin" not in first.stdout
    assert endpoint.templates["ctaoflow-events"] == json.loads(documents.TEMPLATE.read_text())
    policy = json.loads((documents.TEMPLATE.parent / "ism-policy-events.json").read_text())
    assert endpoint.policies["ctaoflow-events-retention"]["body"] == policy
    assert "created" in first.stdout
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and "updated" in second.stdout, second.stderr
    assert endpoint.policies["ctaoflow-events-retention"]["seq"] == 1
    assert {r["user"] for r in endpoint.requests} == {"admin"}  # basic auth sent


def test_connections_and_secrets() -> None:
    from ctaoflow.monitoring.client import from_fields, from_url, where

    conn = from_url("https://ops:p%40ss@os.example.org:9201")
    assert conn == {"host": "os.example.org", "port": 9201, "login": "ops", "password": "p@ss",
                    "use_ssl": True, "verify_certs": True}
    assert where(conn) == "https://os.example.org:9201"
    airflow = from_fields(host="os.example.org", port=None, login="ops", password="x",
                          schema=None, extra='{"use_ssl": true, "verify_certs": false}')
    assert airflow["use_ssl"] and not airflow["verify_certs"] and airflow["port"] == 9200
    with pytest.raises(ValueError, match="give http"):
        from_url("ftp://x")


def test_ctaoflow_metrics_reach_a_statsd_socket_through_airflows_metrics(home) -> None:
    engine = engine_for(DATA / "failing.yaml")
    register_demo_inputs(EmbeddedCatalog(settings.home() / "catalog"), gamma=5, proton=5)
    run_all(engine)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    script = textwrap.dedent("""
        from airflow.sdk.observability import stats
        from airflow.sdk.observability.metrics import stats_utils
        from airflow.sdk.configuration import conf
        # as Airflow's task runner does at the start of a task process
        stats.initialize(factory=stats_utils.get_stats_factory(),
                         export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))
        from ctaoflow.engine.ledger import session_factory
        from ctaoflow.monitoring import metrics
        metrics.emit_gauges(session_factory(), stats.Stats)
        metrics.poll_latency(stats.Stats, "local", 0.25)
    """)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "AIRFLOW__METRICS__STATSD_ON": "True",
           "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
           "AIRFLOW__METRICS__STATSD_PORT": str(udp.getsockname()[1]),
           "AIRFLOW__METRICS__STATSD_PREFIX": "airflow"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    packets = set()
    try:
        while True:
            packets.update(udp.recv(65535).decode().split("\n"))
            if "airflow.ctaoflow.poll.latency.local:250.0|ms" in packets:
                break
    except socket.timeout:
        pass
    finally:
        udp.close()
    assert "airflow.ctaoflow.jobs.local.Done:1|g" in packets, packets
    assert "airflow.ctaoflow.jobs.local.Failed:2|g" in packets
    assert "airflow.ctaoflow.files.Unused:5|g" in packets
    assert "airflow.ctaoflow.files.Processed:5|g" in packets
    assert "airflow.ctaoflow.monitoring.backlog:0|g" in packets
    assert "airflow.ctaoflow.poll.latency.local:250.000000|ms" in packets, packets


def test_airflow_remote_logging_loads_the_opensearch_task_handler(endpoint, tmp_path) -> None:
    """Configured as docker-compose.yaml configures it, Airflow builds the OpenSearch
    provider's remote log IO, and a task log it uploads arrives as a bulk request."""
    compose = (PROJECT / "docker-compose.yaml").read_text()
    for key in ("AIRFLOW__LOGGING__REMOTE_LOGGING", "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER",
                "AIRFLOW__OPENSEARCH__HOST", "AIRFLOW__OPENSEARCH__WRITE_TO_OS",
                "AIRFLOW__OPENSEARCH__TARGET_INDEX"):
        assert key in compose, key
    logs = tmp_path / "logs"
    log = logs / "dag_id=demo/run_id=r1/task_id=process.run/map_index=0/attempt=1.log"
    log.parent.mkdir(parents=True)
    log.write_text('{"timestamp": "2026-12-02T07:00:00Z", "level": "info", '
                   '"event": "chunk 0: waiting for 5 job(s) at local"}\n')
    script = textwrap.dedent(f"""
        from types import SimpleNamespace
        from airflow.config_templates import airflow_local_settings as s
        from airflow.providers.opensearch.log.os_task_handler import OpensearchRemoteLogIO
        assert s.REMOTE_LOGGING, "remote logging off"
        assert isinstance(s.REMOTE_TASK_LOG, OpensearchRemoteLogIO), type(s.REMOTE_TASK_LOG)
        ti = SimpleNamespace(dag_id="demo", task_id="process.run", run_id="r1", map_index=0,
                             try_number=1)
        s.REMOTE_TASK_LOG.upload({str(log)!r}, ti)
        print("uploaded")
    """)
    env = {**os.environ, "PYTHONPATH": str(PROJECT),
           "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs),
           "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
           "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": "opensearch://",
           "AIRFLOW__OPENSEARCH__HOST": "http://127.0.0.1",
           "AIRFLOW__OPENSEARCH__PORT": str(endpoint.port),
           "AIRFLOW__OPENSEARCH__USERNAME": "airflow", "AIRFLOW__OPENSEARCH__PASSWORD": "pw",
           "AIRFLOW__OPENSEARCH__WRITE_TO_OS": "True",
           "AIRFLOW__OPENSEARCH__TARGET_INDEX": "airflow-logs",
           "AIRFLOW__OPENSEARCH__INDEX_PATTERNS": "airflow-logs"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "uploaded" in out.stdout, out.stdout + out.stderr
    (bulk,) = endpoint.bulk_requests()
    assert bulk["user"] == "airflow"
    (stored,) = endpoint.docs["airflow-logs"].values()
    assert "waiting for 5 job(s)" in json.dumps(stored)
    assert stored["log_id"] == "demo-process.run-r1-0-1"


def test_an_airflow_run_with_the_connection_sends_its_changes(airflow_db, home, endpoint,
                                                               monkeypatch, tmp_path) -> None:
    """dag.test() of the failing production with the ``ctaoflow_opensearch`` connection:
    the task code turns monitoring on and its background sender delivers."""
    from airflow.utils.cli import get_bagged_dag

    from ctaoflow.monitoring.sender import stop_background
    from operators.hooks import monitoring

    for name in outbox.ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_CTAOFLOW_OPENSEARCH", json.dumps({
        "conn_type": "opensearch", "host": "127.0.0.1", "port": endpoint.port,
        "login": "ctaoflow", "password": "secret"}))
    folder = tmp_path / "productions"
    folder.mkdir()
    (folder / "failing.yaml").write_text((DATA / "failing.yaml").read_text())
    monkeypatch.setenv("CTAOFLOW_PRODUCTIONS", str(folder))
    register_demo_inputs(EmbeddedCatalog(settings.home() / "catalog"), gamma=5, proton=5)
    monitoring.start.cache_clear()
    try:
        run = get_bagged_dag(None, "failing").test()
        assert run.state == "failed"  # the gamma chunk fails: its documents say why
        deadline = time.monotonic() + 30
        while outbox_rows() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert outbox_rows() == []
    finally:
        stop_background()
        monitoring.start.cache_clear()
        outbox.enable(None)
    docs = endpoint.all_docs().values()
    assert {r["user"] for r in endpoint.bulk_requests()} == {"ctaoflow"}
    failed = [d for d in docs if d["kind"] == "job" and d["state"] == "Failed"]
    assert len(failed) == 2 and {d["failure_class"] for d in failed} == {"application"}
    assert any(d["kind"] == "job" and d["state"] == "Done" for d in docs)
    with session_factory()() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 0


def test_dashboards_use_only_mapped_fields_of_the_right_types() -> None:
    folder = documents.TEMPLATE.parent
    properties = documents.schema()
    objects = [json.loads(line) for line in (folder / "dashboards.ndjson").read_text().splitlines()]
    by_id = {(o["type"], o["id"]) for o in objects}
    used: list[tuple[str, str]] = []  # (aggregation, field)
    for o in objects:
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in by_id, ref
        if o["type"] == "visualization":
            for agg in json.loads(o["attributes"]["visState"])["aggs"]:
                if "field" in agg["params"]:
                    used.append((agg["type"], agg["params"]["field"]))
    grafana = json.loads((folder / "grafana-dashboard.json").read_text())
    for panel in grafana["panels"]:
        for target in panel["targets"]:
            used += [(m["type"], m["field"]) for m in target["metrics"] if "field" in m]
            used += [(b["type"], b["field"]) for b in target["bucketAggs"]]
    wanted = {"terms": {"keyword"}, "sum": {"long", "integer", "float"},
              "date_histogram": {"date"}}
    assert {f for _, f in used} >= {"site", "state", "failure_class", "production", "night",
                                    "files", "@timestamp"}
    for agg, field in used:
        assert properties[field]["type"] in wanted[agg], (agg, field)
    titles = {o["attributes"]["title"] for o in objects if o["type"] == "visualization"}
    assert len(titles) == 4 and len(grafana["panels"]) == 4


def test_a_document_the_mapping_refuses_is_dropped_with_a_warning_not_resent(
        home, monitoring_on, endpoint, monkeypatch, caplog) -> None:
    import tests.opensearch_endpoint as fake

    caplog.set_level(logging.WARNING, logger="ctaoflow.monitoring")
    engine = engine_for(DATA / "failing.yaml")
    register_demo_inputs(engine.catalog, gamma=5, proton=5)
    run_all(engine)
    narrower = {k: v for k, v in documents.schema().items() if k != "backend_id"}
    monkeypatch.setattr(fake, "schema", lambda: narrower)  # a server without that field
    sender = Sender({"host": "127.0.0.1", "port": endpoint.port}, session_factory())
    sender.drain()
    assert outbox_rows() == []  # nothing is sent forever
    docs = endpoint.all_docs().values()
    assert docs and all("backend_id" not in d for d in docs)
    refused = [r.message for r in caplog.records if "refused" in r.message]
    assert len(refused) == 1 and "strict_dynamic_mapping_exception" in refused[0]
    assert not sender.down
