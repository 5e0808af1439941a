"""The Productions UI in a real browser: Airflow's api-server with the plugin, driven by
headless Chromium (Debian's) through Selenium; screenshots under
``var/test-output/browser``.

A production whose jobs fail while a "broken" flag file exists runs through the real
scheduler: its run ends failed (not green) with the files Problematic; the operator
resets them from the UI, the flag goes, and the next run processes them.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine.ledger import EventRow, session_factory
from ctaoflow.ops import overview
from tests.engine_driver import engine_for, run_all

pytestmark = [pytest.mark.browser, pytest.mark.airflow]
PROJECT = Path(__file__).parents[1]
SHOTS = PROJECT / "var" / "test-output" / "browser"
FAILING = """
production: ui_failing
description: "jobs fail while {flag} exists"
defaults: {{sites: [local], max_attempts: 1, max_reassign: 1, poll_interval: 0.5, chunk_size: 2}}
transformations:
  - name: process
    type: processing
    input: {{query: {{data_level: DL0, particle: gamma, ui_test: ui}}}}
    grouping: {{plugin: standard, group_size: 2}}
    job:
      command: [sh, -c, 'test -e {flag} && {{{{ echo "ERROR: cannot write, disk full" >&2; exit 3; }}}}; echo ok > "$0"', "{{output}}", "{{input}}"]
    outputs: [{{name: "out_{{task:04d}}.txt"}}]
"""


@pytest.fixture(scope="module")
def ui(airflow_cluster, tmp_path_factory):
    """The cluster with ``ui_demo`` (the demo, run by the engine) and ``ui_failing`` (run once by the
    scheduler, its gamma files now Problematic); the test process shares their ledger."""
    cluster = airflow_cluster
    home = Path(cluster.env["CTAOFLOW_HOME"])
    flag = tmp_path_factory.mktemp("ui") / "broken"
    flag.write_text("the disk is full\n")
    demo = yaml.safe_load((PROJECT / "config" / "productions" / "demo.yaml").read_text())
    demo["production"] = "ui_demo"
    for t in demo["transformations"]:  # only this test's files: the cluster is shared
        if "query" in t.get("input", {}):
            t["input"]["query"]["ui_test"] = "ui"
    (cluster.productions / "ui_demo.yaml").write_text(yaml.safe_dump(demo))
    (cluster.productions / "ui_failing.yaml").write_text(FAILING.format(flag=flag))
    saved = {k: os.environ.get(k) for k in ("CTAOFLOW_HOME", "CTAOFLOW_SITES")}
    os.environ.update(CTAOFLOW_HOME=str(home), CTAOFLOW_SITES=cluster.env["CTAOFLOW_SITES"])
    register_demo_inputs(EmbeddedCatalog(home / "catalog"), gamma=6, proton=4, first_run=97000,
                         extra={"ui_test": "ui"})
    run_all(engine_for(cluster.productions / "ui_demo.yaml"))
    cluster.wait_for_dag("ui_failing")
    first = cluster.trigger("ui_failing")
    state = cluster.wait_run("ui_failing", first, timeout=300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield {"cluster": cluster, "flag": flag, "first": (first, state),
           "sessions": session_factory(f"sqlite:///{home / 'ledger.db'}")}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def login(open_browser, cluster, user: str):
    driver = open_browser()
    driver.get(f"{cluster.api}/auth/login")
    WebDriverWait(driver, 30).until(
        expected_conditions.presence_of_element_located((By.NAME, "username")))
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(cluster.password(user))
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(lambda d: "/auth/login" not in d.current_url)
    return driver


def ledger_files(ui, name: str) -> dict[str, int]:
    (line,) = [x for x in overview.production_lines(ui["sessions"]) if x.name == name]
    return line.files


def test_a_run_that_leaves_files_for_a_person_is_not_green(ui) -> None:
    cluster, (run_id, state) = ui["cluster"], ui["first"]
    assert state == "failed"
    report = cluster.rest(f"dags/ui_failing/dagRuns/{run_id}/taskInstances/report")
    assert report["state"] == "failed"
    assert ledger_files(ui, "ui_failing") == {"Problematic": 6}
    links = cluster.rest(f"dags/ui_failing/dagRuns/{run_id}/taskInstances/report/links")
    assert links["extra_links"] == {"Production page": "/ctaoflow/productions/ui_failing"}
    chunk = cluster.rest(f"dags/ui_failing/dagRuns/{run_id}/taskInstances/process.run/links"
                         "?map_index=0")
    assert chunk["extra_links"] == {
        "ctaoflow tasks and jobs": "/ctaoflow/productions/ui_failing/chunks/process/0"}


def test_list_page_shows_the_ledgers_numbers(ui, chromium) -> None:
    cluster = ui["cluster"]
    driver = login(chromium, cluster, "operator")
    driver.get(f"{cluster.api}/plugin/ctaoflow")  # the page inside Airflow's own shell
    WebDriverWait(driver, 30).until(
        expected_conditions.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))
    WebDriverWait(driver, 30).until(
        expected_conditions.presence_of_element_located((By.ID, "productions")))
    driver.switch_to.default_content()
    driver.save_screenshot(str(SHOTS / "airflow-nav-productions.png"))
    driver.get(f"{cluster.api}/ctaoflow/productions")
    rows = {r.get_attribute("data-name"): r
            for r in driver.find_elements(By.CSS_SELECTOR, "#productions tbody tr")}
    driver.save_screenshot(str(SHOTS / "productions.png"))
    for name in ("ui_demo", "ui_failing"):
        line = next(x for x in overview.production_lines(ui["sessions"]) if x.name == name)
        cells = [c.text for c in rows[name].find_elements(By.TAG_NAME, "td")]
        assert cells[4:8] == [str(line.processed), str(line.total), str(line.running),
                              str(line.needs_a_person)], (name, cells)
    assert rows["ui_failing"].get_attribute("data-stuck") == "6"
    driver.find_element(By.ID, "stuck").click()  # filter: only those that need a person
    shown = [r.get_attribute("data-name") for r in driver.find_elements(
        By.CSS_SELECTOR, "#productions tbody tr") if r.is_displayed()]
    assert "ui_failing" in shown and "ui_demo" not in shown


def test_reset_from_the_ui_then_the_next_run_processes_the_files(ui, chromium) -> None:
    cluster = ui["cluster"]
    driver = login(chromium, cluster, "operator")
    driver.get(f"{cluster.api}/ctaoflow/productions/ui_failing")
    assert "Problems" in driver.find_element(By.CSS_SELECTOR, "svg rect[data-status]") \
        .get_attribute("data-status")
    driver.save_screenshot(str(SHOTS / "production-ui_failing.png"))
    driver.find_element(By.NAME, "reason").send_keys("disk cleaned")
    driver.find_element(By.ID, "preview").click()
    try:
        alert = WebDriverWait(driver, 30).until(expected_conditions.alert_is_present())
    except TimeoutException:
        pytest.fail(f"no confirmation asked; the page says "
                    f"{driver.find_element(By.ID, 'action-out').text!r}, the browser's console "
                    f"{driver.get_log('browser')}")
    assert "reset 6 Problematic/MaxReset file(s) to Unused" in alert.text
    alert.accept()
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "action-out")
                                    .text.startswith("done:"))
    assert ledger_files(ui, "ui_failing") == {"Unused": 6}
    with ui["sessions"]() as session:
        event = session.scalars(select(EventRow).filter_by(kind="reset")).all()[-1]
    assert event.message.endswith("[by operator; why: disk cleaned]")
    driver.refresh()
    history = driver.find_element(By.ID, "history").text
    assert "operator" in history and "disk cleaned" in history

    ui["flag"].unlink()
    run_id = cluster.trigger("ui_failing")
    assert cluster.wait_run("ui_failing", run_id, timeout=300) == "success"
    assert ledger_files(ui, "ui_failing") == {"Processed": 6}
    driver.get(f"{cluster.api}/ctaoflow/productions/ui_failing")
    driver.save_screenshot(str(SHOTS / "production-ui_failing-after-reset.png"))


def test_drill_down_from_a_chunk_to_its_tasks_jobs(ui, chromium) -> None:
    cluster = ui["cluster"]
    driver = login(chromium, cluster, "operator")
    driver.get(f"{cluster.api}/ctaoflow/productions/ui_failing/chunks/process/0")
    driver.find_element(By.CSS_SELECTOR, "#chunk tbody a").click()
    task = overview.task_detail("ui_failing", "process", 0, ui["sessions"])
    jobs = driver.find_element(By.ID, "jobs").text
    assert task["jobs"] and all(j["batch_id"] in jobs for j in task["jobs"])
    assert "exited with 3" in jobs or " 3 " in jobs
    files = driver.find_element(By.ID, "task-files").text
    assert all(f["lfn"] in files for f in task["files"])
    driver.save_screenshot(str(SHOTS / "task.png"))


def test_a_reader_sees_the_page_but_cannot_act(ui, chromium) -> None:
    cluster = ui["cluster"]
    driver = login(chromium, cluster, "viewer")
    driver.get(f"{cluster.api}/ctaoflow/productions/ui_failing")
    assert driver.find_element(By.ID, "no-actions").is_displayed()
    assert not driver.find_elements(By.ID, "action-form")
    with pytest.raises(urllib.error.HTTPError) as refused:
        call(cluster, "POST", "/ctaoflow/api/productions/ui_failing/actions",
             {"action": "stop", "reason": "try", "dry_run": False}, token=cluster.token("viewer"))
    assert refused.value.code == 403


def call(cluster, method: str, path: str, body: dict | None = None, token: str | None = None,
         headers: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{cluster.api}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {}),
                 **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


ROUTES = [("GET", "/ctaoflow/productions"), ("GET", "/ctaoflow/productions/ui_failing"),
          ("GET", "/ctaoflow/productions/ui_failing?format=report"),
          ("GET", "/ctaoflow/productions/ui_failing/files"),
          ("GET", "/ctaoflow/productions/ui_failing/tasks/process/0"),
          ("GET", "/ctaoflow/productions/ui_failing/chunks/process/0"),
          ("GET", "/ctaoflow/api/productions"), ("GET", "/ctaoflow/api/productions/ui_failing"),
          ("GET", "/ctaoflow/api/productions/ui_failing/files"),
          ("GET", "/ctaoflow/api/productions/ui_failing/tasks/process/0"),
          ("POST", "/ctaoflow/api/productions/ui_failing/actions"),
          ("GET", "/ctaoflow/openapi.json"), ("GET", "/ctaoflow/docs")]


def test_every_route_refuses_anonymous_and_cross_site_writes(ui) -> None:
    cluster = ui["cluster"]
    for method, path in ROUTES:
        with pytest.raises(urllib.error.HTTPError) as refused:
            call(cluster, method, path, {"action": "stop"} if method == "POST" else None)
        assert refused.value.code in (401, 403), (method, path)
    token = cluster.token()
    assert call(cluster, "GET", "/ctaoflow/openapi.json", token=token)["info"]["title"] == \
        "ctaoflow"
    cookie = {"Cookie": f"_token={token}"}
    for headers in (cookie, {**cookie, "X-Ctaoflow-Action-Token": "forged"},
                    {**cookie, "Origin": "http://evil.example"}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            call(cluster, "POST", "/ctaoflow/api/productions/ui_failing/actions",
                 {"action": "stop", "reason": "csrf", "dry_run": False}, headers=headers)
        assert refused.value.code == 403, headers
    preview = call(cluster, "POST", "/ctaoflow/api/productions/ui_failing/actions",
                   {"action": "stop", "dry_run": True}, token=token)
    assert preview["message"] == "would stop 1 transformation(s)"
