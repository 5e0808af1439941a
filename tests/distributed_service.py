"""A distributed Airflow deployment for the ``distributed`` tests.

The session fixture ``distributed_cluster`` runs AirflowCluster's components with the
CeleryExecutor: two schedulers, the api-server, a dag-processor, a triggerer and two
``airflow celery worker`` processes (concurrency 4, each its own hostname), Redis as
the Celery broker (services/redis/start.sh), and two private PostgreSQL clusters
(services/airflow-distributed/start_postgres.sh): one for Airflow's metadata DB and the
Celery result backend, one for ctaoflow's ledger (the ``ctaoflow_ledger`` connection),
so that the ledger's server can be killed alone. Scheduler, worker, Redis and the
ledger's PostgreSQL can each be SIGKILLed and restarted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.airflow_service import PROJECT, AirflowCluster
from tests.service_notice import announce

REDIS = PROJECT / "services" / "redis"
POSTGRES = PROJECT / "services" / "airflow-distributed" / "start_postgres.sh"
METADATA_PORT, LEDGER_PORT, REDIS_PORT = 15434, 15435, 16379
WORKERS = ("worker-1", "worker-2")


def hostname() -> str:
    """Airflow's hostname callable here: a Celery worker's own name (two workers share
    this machine), the machine's name for the other components."""
    return os.environ.get("CTAOFLOW_WORKER_NAME") or socket.getfqdn()


class DistributedCluster(AirflowCluster):
    """Two schedulers and two Celery workers on Redis and PostgreSQL."""

    components = ("api-server", "scheduler-1", "scheduler-2", "dag-processor", "triggerer",
                  *WORKERS)

    def __init__(self, home: Path, ports: tuple[int, int, int] = (METADATA_PORT, LEDGER_PORT,
                                                                  REDIS_PORT)) -> None:
        """``ports``: the metadata PostgreSQL's, the ledger PostgreSQL's and Redis's (a
        benchmark beside a test session's deployment takes free ones)."""
        super().__init__(home)
        self.metadata_port, self.ledger_port, self.redis_port = ports
        metadata = f"ctaoflow:ctaoflow@127.0.0.1:{self.metadata_port}/airflow"
        self.services_env = {
            **self.env,
            "REDIS_PORT": str(self.redis_port), "REDIS_BASE": str(home / "redis"),
            "METADATA_PGBASE": str(home / "pg-airflow"), "LEDGER_PGBASE": str(home / "pg-ledger"),
        }
        self.env.update({
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.distributed_service.hostname",
            # the callable above is the project's test code: importable from a fresh clone
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT),
                                                        os.environ.get("PYTHONPATH")])),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{metadata}",
            # Airflow's async engine (the default would be asyncpg): psycopg 3's
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+psycopg_async://{metadata}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{metadata}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            # a task queued to a killed worker or a restarted Redis is sent again soon
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "600",
            "AIRFLOW_CONN_CTAOFLOW_LEDGER":
                f"postgresql+psycopg://ctaoflow:ctaoflow@127.0.0.1:{self.ledger_port}/ledger",
        })

    @property
    def ledger_url(self) -> str:
        return self.env["AIRFLOW_CONN_CTAOFLOW_LEDGER"]

    def command(self, component: str) -> list[str]:
        if component.startswith("scheduler-"):
            return ["airflow", "scheduler"]
        if component.startswith("worker-"):
            # the log server is skipped: the api-server reads the task logs from this
            # machine's disk, and two workers on one machine would share its port
            return ["env", f"CTAOFLOW_WORKER_NAME={component}", "airflow", "celery", "worker",
                    "--celery-hostname", f"{component}@%h", "--concurrency", "4",
                    "--pid", str(self._pidfile(component)), "--skip-serve-logs"]
        return super().command(component)

    def _pidfile(self, worker: str) -> Path:
        return self.home / "airflow" / f"{worker}.pid"

    def start(self, component: str) -> None:
        if component.startswith("worker-"):  # a killed worker's pid file stops a new one
            self._pidfile(component).unlink(missing_ok=True)
        super().start(component)

    def _script(self, *args: str) -> None:
        subprocess.run(args, env=self.services_env, check=True, capture_output=True,
                       timeout=300)

    def postgres(self, which: str, action: str = "start") -> None:
        port = self.metadata_port if which == "metadata" else self.ledger_port
        self._script("env", f"DIST_PGPORT={port}",
                     f"DIST_PGBASE={self.services_env[f'{which.upper()}_PGBASE']}",
                     str(POSTGRES), action)

    def services(self) -> None:
        self._script(str(REDIS / "start.sh"))
        self.postgres("metadata")
        self.postgres("ledger")

    def kill_redis(self) -> None:
        """SIGKILL Redis and start it again (on its append-only file)."""
        pidfile = Path(self.services_env["REDIS_BASE"]) / f"redis-{self.redis_port}.pid"
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        pidfile.unlink()
        self._script(str(REDIS / "start.sh"))

    def kill_ledger(self) -> None:
        """SIGKILL the ledger's PostgreSQL (postmaster and backends) and start it again."""
        self.postgres("ledger", "kill")
        self.postgres("ledger")

    def chaos_kill(self, victim: str) -> bool:
        """Kill and restart one victim of the chaos scenario: ``scheduler-N``,
        ``worker-N``, ``redis`` or ``ledger``."""
        if victim == "redis":
            self.kill_redis()
        elif victim == "ledger":
            self.kill_ledger()
        else:
            self.restart(victim)
        return True

    def down(self) -> None:
        super().down()
        for script in (["env", f"REDIS_PORT={self.redis_port}", str(REDIS / "stop.sh")],):
            subprocess.run(script, env=self.services_env, capture_output=True)
        for which in ("metadata", "ledger"):
            try:
                self.postgres(which, "stop")
            except subprocess.CalledProcessError:
                pass


@pytest.fixture(scope="session")
def distributed_cluster(pytestconfig: pytest.Config):
    """A running two-scheduler CeleryExecutor deployment, shared by a session's tests."""
    home = Path(tempfile.mkdtemp(prefix="ctaoflow-distributed-"))
    home.chmod(0o755)  # PostgreSQL runs as user postgres, its data below
    cluster = DistributedCluster(home)
    announce(pytestconfig, "distributed_cluster: starting Redis, PostgreSQL and Airflow "
                           "(api-server, 2 schedulers, dag-processor, triggerer, 2 Celery "
                           f"workers) in {cluster.home}")
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()
