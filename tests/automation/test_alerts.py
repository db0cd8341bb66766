"""Alerts reach a local SMTP server (aiosmtpd) and a local HTTP server, both started here: a real
failed build (the session's ``failed_build``), a failed run whose checks held two agencies'
deliveries (the real failure sensor on a real failed run), and the late feeds of the demo build.
Nothing is sent when nothing is configured, and a sink that refuses the connection is logged,
never raised."""

from __future__ import annotations

import json
import logging
import socket
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from aiosmtpd.controller import Controller

from dagster_project.automation import alerts
from dagster_project.config import paths
from tests.audit.test_audit_sensors import copy_without_pages, evaluate
from tests.quality.test_attribution import evaluate_failure, failing_run_with_holds

ENV = (
    "CXW_ALERT_SMTP_HOST",
    "CXW_ALERT_SMTP_PORT",
    "CXW_ALERT_SMTP_FROM",
    "CXW_ALERT_SMTP_TO",
    "CXW_ALERT_SMTP_USER",
    "CXW_ALERT_SMTP_PASSWORD",
    "CXW_ALERT_SMTP_STARTTLS",
    "CXW_ALERT_WEBHOOK_URL",
    "CXW_ALERT_TIMEOUT_SECONDS",
)


class Inbox:
    """aiosmtpd handler: keeps every message received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=closed_port())  # it cannot take port 0
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@pytest.fixture
def webhook_server():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's hook name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"content_type": self.headers["Content-Type"], "json": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_alert_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def sinks(no_alert_env, smtp_server, webhook_server):
    """Both sinks on, pointed at the local servers."""
    port, inbox = smtp_server
    url, received = webhook_server
    no_alert_env.setenv("CXW_ALERT_SMTP_HOST", "127.0.0.1")
    no_alert_env.setenv("CXW_ALERT_SMTP_PORT", str(port))
    no_alert_env.setenv("CXW_ALERT_SMTP_FROM", "warehouse@example.org")
    no_alert_env.setenv("CXW_ALERT_SMTP_TO", "ops@example.org, data@example.org")
    no_alert_env.setenv("CXW_ALERT_WEBHOOK_URL", url)
    no_alert_env.setenv("CXW_ALERT_TIMEOUT_SECONDS", "5")
    return inbox, received


def closed_port() -> int:
    """A local port nothing listens on: connecting is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def body_of(message: Message) -> str:
    return message.get_payload(decode=True).decode()


def test_the_failure_sensor_mails_and_posts_the_checks_and_the_deliveries_it_held(scratch, sinks):
    inbox, received = sinks
    instance = dg.DagsterInstance.ephemeral()
    result = failing_run_with_holds(instance)
    (request,) = evaluate_failure(instance, result)  # the build again is still requested
    assert request.run_key == f"after-holds-{result.run_id}"

    (mail,) = inbox.messages
    assert mail["To"] == "ops@example.org, data@example.org" and mail["From"] == "warehouse@example.org"
    assert mail["Subject"] == "[cx warehouse] run failed: 4 check(s) failed, 2 delivery(ies) held"
    assert mail["X-CXW-Run-Id"] == result.run_id and mail["X-CXW-Alert-Kind"] == "run_failed"
    body = body_of(mail)
    assert f"Run {result.run_id} of build_warehouse failed" in body
    for check in ("gx_fct on marts/fct (ERROR)", "not_null_fct_id on marts/fct (ERROR)", "unique_dim on marts/dim"):
        assert f"failed check: {check}" in body
    assert "held B f b-new.csv: blocking checks failed on B's rows in run " in body
    assert "held C f c-new.csv: blocking checks failed on C's rows in run " in body

    (post,) = received
    assert post["content_type"] == "application/json"
    sent = post["json"]
    assert (sent["kind"], sent["run_id"]) == ("run_failed", result.run_id)
    assert [c.split(" on ")[0] for c in sent["failed_checks"]] == [
        "gx_fct",
        "not_null_fct_id",
        "unique_dim",
        "warn_only",
    ]
    assert [(h["agency"], h["feed"], h["file"]) for h in sent["held_deliveries"]] == [
        ("B", "f", "b-new.csv"),
        ("C", "f", "c-new.csv"),
    ]
    assert all(f"in run {result.run_id}:" in h["reason"] for h in sent["held_deliveries"])
    assert body.splitlines() == sent["lines"]


def test_a_real_failed_build_alerts_its_failed_check_and_quotes_no_delivered_value(
    failed_build, tmp_path, monkeypatch, sinks
):
    inbox, received = sinks
    data = copy_without_pages(failed_build.data_dir, tmp_path / "data")
    monkeypatch.setenv("CXW_DATA_DIR", str(data))
    assert evaluate("audit_summary_on_failure", failed_build.result, dg.DagsterEventType.RUN_FAILURE) == []
    (mail,), (post,) = inbox.messages, received
    run_id = failed_build.result.run_id
    assert post["json"]["run_id"] == run_id == mail["X-CXW-Run-Id"]
    assert post["json"]["failed_checks"] == ["gx_raw_contacts on raw/contacts (ERROR)"]
    assert post["json"]["held_deliveries"] == []  # its deliveries were all published before
    assert "failed check: gx_raw_contacts on raw/contacts (ERROR)" in body_of(mail)
    # the bad row's values (its id and handle time) are in raw, never in a message
    for text in (body_of(mail), json.dumps(post["json"])):
        assert "X1" not in text and "-30" not in text


def test_after_a_publish_the_late_feeds_of_mart_feed_health_are_sent(demo_build, tmp_path, monkeypatch, sinks):
    inbox, received = sinks
    data = copy_without_pages(demo_build.warehouse.parent.parent, tmp_path / "data")
    monkeypatch.setenv("CXW_DATA_DIR", str(data))
    late = demo_build.query("select agency_code, feed_name from marts.mart_feed_health where is_late order by 1, 2")
    assert late  # the demo's months are long past: every feed it delivers is late by today
    assert evaluate("audit_summary_on_success", demo_build.result, dg.DagsterEventType.RUN_SUCCESS) == []
    (post,) = received
    assert post["json"]["kind"] == "feed_late" and post["json"]["run_id"] == demo_build.result.run_id
    assert [(f["agency"], f["feed"]) for f in post["json"]["late_feeds"]] == [tuple(r) for r in late]
    (mail,) = inbox.messages
    assert f"{late[0][0]} {late[0][1]}: last period " in body_of(mail)


def test_a_publish_after_holds_says_which_deliveries_it_left_out(scratch, sinks):
    inbox, received = sinks
    instance = dg.DagsterInstance.ephemeral()
    failed = failing_run_with_holds(instance)
    evaluate_failure(instance, failed)
    inbox.messages.clear(), received.clear()
    problems = alerts.send_run_alerts(paths().warehouse, "r-next", True, ["r-next", failed.run_id])
    assert problems == []
    (post,) = received  # the trail has no mart_feed_health: no feed_late
    assert post["json"]["kind"] == "deliveries_held" and post["json"]["run_id"] == "r-next"
    assert [h["file"] for h in post["json"]["held_deliveries"]] == ["b-new.csv", "c-new.csv"]
    assert inbox.messages[0]["Subject"] == "[cx warehouse] 2 delivery(ies) held: B, C"


def test_nothing_is_sent_when_nothing_is_configured(scratch, no_alert_env, smtp_server, webhook_server):
    assert alerts.sinks_from_env() == []
    instance = dg.DagsterInstance.ephemeral()
    evaluate_failure(instance, failing_run_with_holds(instance))
    assert smtp_server[1].messages == [] and webhook_server[1] == []


def test_a_sink_that_refuses_the_connection_is_logged_and_the_sensor_completes(scratch, no_alert_env, caplog):
    no_alert_env.setenv("CXW_ALERT_SMTP_HOST", "127.0.0.1")
    no_alert_env.setenv("CXW_ALERT_SMTP_PORT", str(closed_port()))
    no_alert_env.setenv("CXW_ALERT_SMTP_TO", "ops@example.org")
    no_alert_env.setenv("CXW_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{closed_port()}/hook")
    no_alert_env.setenv("CXW_ALERT_TIMEOUT_SECONDS", "2")
    instance = dg.DagsterInstance.ephemeral()
    result = failing_run_with_holds(instance)
    (request,) = evaluate_failure(instance, result)  # holds, page and the build again, despite the sinks
    assert (paths().audit_dir / "runs" / f"{result.run_id}.html").exists()
    with caplog.at_level(logging.WARNING, logger=alerts.logger.name):
        problems = alerts.send_run_alerts(paths().warehouse, result.run_id, False)
    assert [p.split(": ")[0] for p in problems] == [
        f"alert run_failed of run {result.run_id} not sent by email",
        f"alert run_failed of run {result.run_id} not sent by webhook",
    ]
    assert "ConnectionRefusedError" in problems[0] and "Connection refused" in problems[1]
    assert [r.getMessage() for r in caplog.records if r.name == alerts.logger.name] == problems


def test_half_an_smtp_configuration_is_off_and_says_why(no_alert_env, caplog):
    with caplog.at_level(logging.WARNING, logger=alerts.logger.name):
        assert alerts.sinks_from_env({"CXW_ALERT_SMTP_HOST": "mail.example.org"}) == []
    assert "set both CXW_ALERT_SMTP_HOST and CXW_ALERT_SMTP_TO" in caplog.text


def test_a_webhook_url_that_is_not_http_is_off_and_says_why(no_alert_env, caplog):
    with caplog.at_level(logging.WARNING, logger=alerts.logger.name):
        assert alerts.sinks_from_env({"CXW_ALERT_WEBHOOK_URL": "file:///etc/passwd"}) == []
        (sink,) = alerts.sinks_from_env({"CXW_ALERT_WEBHOOK_URL": "https://hooks.example.org/cx"})
    assert isinstance(sink, alerts.WebhookSink)
    assert "CXW_ALERT_WEBHOOK_URL must be an http:// or https:// URL" in caplog.text


def test_an_unreachable_warehouse_is_a_logged_problem_not_an_exception(no_alert_env, tmp_path):
    no_alert_env.setenv("CXW_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{closed_port()}/hook")
    broken = tmp_path / "cx.duckdb"
    broken.write_bytes(b"not a database")
    (problem,) = alerts.send_run_alerts(broken, "r1", False)
    assert problem.startswith("alerts of run r1 not built: ")
