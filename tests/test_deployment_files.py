"""The deployment files (no Docker engine nor Kubernetes cluster here, so their shape is
checked): docker-compose.yaml, the Dockerfile and the Helm chart's values, all with the
CeleryExecutor, Redis, scalable workers, two schedulers and the ledger on PostgreSQL.

deploy/helm/airflow-chart-values.schema.json is the official Airflow Helm chart's
values schema, chart 1.21.0 (appVersion 3.2.0): apache/airflow chart/values.schema.json
at commit b90710803a45d015a221b6045295d0dc9ddb964f ("Add RELEASE_NOTES.rst and
Chart.yaml changes for 1.21.0", #65569), unchanged (git blob 63104f69cc1a)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import jsonschema
import yaml

PROJECT = Path(__file__).parents[1]
HELM = PROJECT / "deploy" / "helm"


@cache
def _chart_schema() -> dict:
    return json.loads((HELM / "airflow-chart-values.schema.json").read_text())


def _schema_errors(values: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(_chart_schema())
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
                  for e in validator.iter_errors(values))


def test_compose_runs_celery_workers_on_redis_and_the_ledger_on_postgresql() -> None:
    compose = yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "ledger-db", "redis", "init", "api-server", "scheduler",
            "dag-processor", "triggerer", "airflow-worker"} <= set(services)
    env = services["scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert env["AIRFLOW_CONN_CTAOFLOW_LEDGER"].startswith("postgresql+psycopg://")
    assert "@ledger-db/" in env["AIRFLOW_CONN_CTAOFLOW_LEDGER"]
    assert services["scheduler"]["deploy"]["replicas"] == 2
    worker = services["airflow-worker"]
    assert worker["command"].startswith("celery worker") and worker["deploy"]["replicas"] >= 2
    assert "ports" not in worker and "container_name" not in worker  # --scale works
    for name in ("api-server", "scheduler", "dag-processor", "triggerer", "airflow-worker"):
        assert services[name]["image"] == services["init"]["image"]
        assert services[name]["environment"] == env
        assert {"postgres", "ledger-db", "redis"} <= set(services[name]["depends_on"])
    assert services["redis"]["image"].startswith("redis:")


def test_the_image_installs_the_pinned_requirements_and_the_project() -> None:
    lines = (PROJECT / "Dockerfile").read_text().splitlines()
    assert lines[[l.startswith("FROM") for l in lines].index(True)] == \
        "FROM apache/airflow:3.3.2-python3.11"
    text = "\n".join(lines)
    assert "pip install --no-cache-dir -r /opt/ctaoflow/requirements.txt" in text
    for folder in ("ctaoflow", "operators", "dags", "plugins", "config"):
        assert f"COPY --chown=airflow:0 {folder} /opt/ctaoflow/{folder}" in text
    requirements = (PROJECT / "requirements.txt").read_text().splitlines()
    assert "apache-airflow==3.3.2" in requirements
    assert any(r.startswith("apache-airflow-providers-celery==") for r in requirements)


def test_helm_values_run_celery_with_two_schedulers_and_secret_connections() -> None:
    values = yaml.safe_load((PROJECT / "deploy" / "helm" / "values.yaml").read_text())
    assert values["executor"] == "CeleryExecutor"
    assert values["scheduler"]["replicas"] == 2 and values["workers"]["celery"]["replicas"] >= 2
    assert values["redis"]["enabled"] and not values["postgresql"]["enabled"]
    assert values["data"]["metadataSecretName"]
    # no result backend secret: the Celery provider then uses "db+" and the metadata URL
    assert "resultBackendSecretName" not in values["data"]
    # CTAOFLOW_HOME (as in the Dockerfile) is a volume shared by all the Airflow pods
    mounts = {m["name"]: m["mountPath"] for m in values["volumeMounts"]}
    assert mounts["ctaoflow-state"] == "/var/lib/ctaoflow"
    assert {"name": "ctaoflow-state", "persistentVolumeClaim": {"claimName": "ctaoflow-state"}} \
        in values["volumes"]
    assert "CTAOFLOW_HOME=/var/lib/ctaoflow" in (PROJECT / "Dockerfile").read_text()
    assert values["dags"]["gitSync"]["enabled"] is False  # the DAGs are in the image
    assert values["config"]["core"]["dags_folder"] == "/opt/ctaoflow/dags"
    assert yaml.safe_load(values["extraEnvFrom"]) == [
        {"secretRef": {"name": "ctaoflow-connections"}}]
    text = (PROJECT / "deploy" / "helm" / "values.yaml").read_text()
    plain = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not any("AIRFLOW_CONN_" in line or "postgresql://" in line or "password" in line
                   for line in plain), "connections belong in secrets"


def test_helm_values_match_the_airflow_charts_schema() -> None:
    values = yaml.safe_load((HELM / "values.yaml").read_text())
    assert _schema_errors(values) == []
    # the schema catches a misspelt key and a wrong type, as `helm install` would
    misspelt = copy.deepcopy(values)
    misspelt["scheduler"]["replica"] = misspelt["scheduler"].pop("replicas")
    assert any("'replica' was unexpected" in e for e in _schema_errors(misspelt))
    wrong_type = copy.deepcopy(values)
    wrong_type["redis"]["enabled"] = "yes"
    assert any(e.startswith("redis.enabled:") for e in _schema_errors(wrong_type))


def test_airflow_loads_the_plugins_folder_without_import_errors() -> None:
    """Airflow imports every .py under plugins/ as a plugin file, the UI package's modules
    too: they import each other by absolute name, as the plugin imports them."""
    from airflow import plugins_manager

    assert plugins_manager.get_import_errors() == {}
    assert [info["name"] for info in plugins_manager.get_plugin_info()] == ["ctaoflow"]
