"""A real Airflow deployment for the ``airflow`` and ``chaos`` tests.

The session fixture ``airflow_cluster`` starts Airflow's api-server (the execution API
the workers and the triggerer talk to), a scheduler with the LocalExecutor, a
dag-processor and a triggerer, each its own process in a private AIRFLOW_HOME, with
its own ctaoflow home and productions folder. Components can be SIGKILLed and
restarted one by one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.service_notice import announce

PROJECT = Path(__file__).resolve().parents[1]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowCluster:
    """Airflow's four long-running components, started from ``home``. Subclasses
    (tests/distributed_service.py) change ``components``, ``command`` and ``services``."""

    components: tuple[str, ...] = COMPONENTS

    def __init__(self, home: Path) -> None:
        self.home = home
        self.productions = home / "productions"
        self.productions.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        from cryptography.fernet import Fernet

        bin_dir = Path(sys.executable).parent
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "AIRFLOW_HOME": str(home / "airflow"),
            "CTAOFLOW_HOME": str(home / "ctaoflow"),
            "CTAOFLOW_PRODUCTIONS": str(self.productions),
            "CTAOFLOW_SITES": str(home / "sites.yaml"),  # read at run time: tests may rewrite it
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "operator:admin,viewer:viewer",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            # private log-server ports: two deployments on one machine must not collide
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(16).hex(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow' / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            # a killed worker or triggerer is noticed in seconds, not minutes
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
            # a restarted scheduler adopts a dead one's tasks after this, not 300 s
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
        self._token: str | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs = home / "logs"
        self.logs.mkdir(exist_ok=True)

    @property
    def ledger_url(self) -> str:
        """The ledger the tasks write (the ``ctaoflow_ledger`` default: the home's SQLite)."""
        return f"sqlite:///{Path(self.env['CTAOFLOW_HOME']) / 'ledger.db'}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}"

    def password(self, user: str = "operator") -> str:
        """The generated password of a user of the simple auth manager (``operator`` is
        an admin, ``viewer`` may only read)."""
        return json.loads((self.home / "airflow" /
                           "simple_auth_manager_passwords.json.generated").read_text())[user]

    def token(self, user: str = "operator") -> str:
        """A JWT for ``user``."""
        request = urllib.request.Request(
            f"{self.api}/auth/token", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"username": user, "password": self.password(user)}).encode())
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["access_token"]

    def rest(self, path: str, body: dict | None = None) -> dict:
        """A call to the REST API (``/api/v2/<path>``), POST when there is a body. The CLI
        would cost ~3 CPU s per call, which polling tests cannot afford on 2 cores."""
        self._token = self._token or self.token()
        request = urllib.request.Request(
            f"{self.api}/api/v2/{path}", method="GET" if body is None else "POST",
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
            data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def airflow(self, *args: str, timeout: float = 120) -> str:
        """Run an ``airflow`` CLI command against this deployment; return its stdout."""
        done = subprocess.run(["airflow", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"airflow {' '.join(args)}: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def command(self, component: str) -> list[str]:
        """The command line of a component (its name is the airflow subcommand here)."""
        return ["airflow", component]

    def services(self) -> None:
        """Start what the components need before ``db migrate`` (nothing here)."""

    def start(self, component: str) -> None:
        log = open(self.logs / f"{component}.log", "ab")
        self.procs[component] = subprocess.Popen(
            self.command(component), env=self.env, stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self, component: str) -> None:
        """SIGKILL a component and all its children (e.g. the scheduler's workers)."""
        proc = self.procs.pop(component)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def restart(self, component: str) -> None:
        self.kill(component)
        self.start(component)

    def up(self) -> None:
        (self.home / "airflow").mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / "config" / "sites.yaml", self.home / "sites.yaml")
        self.services()
        self.airflow("db", "migrate", timeout=300)
        for component in self.components:
            self.start(component)
        self.wait_api()

    def wait_api(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.api}/api/v2/monitor/health", timeout=5):
                    return
            except OSError:
                time.sleep(1)
        raise TimeoutError(f"the api-server did not answer in {timeout} s; see {self.logs}")

    def down(self) -> None:
        for component in list(self.procs):
            self.kill(component)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.rest(f"dags/{dag_id}")
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
            time.sleep(2)
        raise TimeoutError(f"DAG {dag_id} not parsed after {timeout} s; see {self.logs}")

    def trigger(self, dag_id: str) -> str:
        return self.rest(f"dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The run's state; None while the api-server does not answer (it may be restarting)."""
        try:
            return self.rest(f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]
        except urllib.error.HTTPError:
            raise
        except OSError:
            return None

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600,
                 during=None) -> str:
        """Wait for a run to end; ``during(elapsed)`` is called between checks."""
        started = time.monotonic()
        state = None
        while time.monotonic() - started < timeout:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            if during:
                during(time.monotonic() - started)
            time.sleep(1)
        raise TimeoutError(f"run {run_id} of {dag_id} still {state} after {timeout} s; "
                           f"see {self.logs}")


@pytest.fixture(scope="session")
def airflow_cluster(pytestconfig: pytest.Config):
    """A running Airflow deployment, shared by the tests of a session."""
    cluster = AirflowCluster(Path(tempfile.mkdtemp(prefix="ctaoflow-airflow-")))
    announce(pytestconfig, "airflow_cluster: starting Airflow (api-server, scheduler, "
                           f"dag-processor, triggerer) in {cluster.home}")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()
