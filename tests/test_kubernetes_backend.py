"""KubernetesBackend: manifests against the real schemas, API calls against kmock.

Manifests are checked with ``kubernetes-validate`` (strict). The create / list / patch /
delete paths go through the official ``kubernetes`` client to kmock's in-memory API
emulator, run in a background thread; the emulator runs no controllers, so the tests
write Job status and create pods themselves, as the Job controller and kubelet would.
kmock ignores label selectors; the emulator here applies them as the API server does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import kubernetes_validate
import pytest
from kubernetes import client

from ctaoflow.backends import make_backend
from ctaoflow.backends.base import BackendError, JobSpec, JobState, JobStatus, SiteConfig
from ctaoflow.backends.kubernetes import (
    CHUNK_LABEL,
    INDEX_ANNOTATION,
    MANIFEST_KEY,
    KubernetesBackend,
    chunk_name,
    configmap_manifest,
    index_status,
    job_manifest,
    parse_indexes,
)

HOSTILE = ("it's", 'say "hi"', "$(rm -rf /)", "$(JOB_COMPLETION_INDEX)", "`id`", "a\nb",
           "x;y|z", "$HOME")
IMAGE = "harbor.cta-observatory.org/dpps/ctapipe:0.28.0"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
_namespaces = itertools.count()


class UidEmulator(kmock.KubernetesEmulator):
    """kmock's emulator, plus what a real API server does and kmock does not: a uid for
    every object it creates, and lists filtered by an equality label selector."""

    async def _handle(self, request: kmock.Request) -> Any:
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            request.data.setdefault("metadata", {}).setdefault("uid", str(uuid.uuid4()))
        return await super()._handle(request)

    async def _serve_list(self, request: kmock.Request) -> Any:
        listed = await super()._serve_list(request)
        wanted = dict(term.split("=", 1) for term in
                      filter(None, request.params.get("labelSelector", "").split(",")))
        listed["items"] = [item for item in listed["items"]
                           if wanted.items() <= (item["metadata"].get("labels") or {}).items()]
        return listed


class Emulator:
    """kmock's KubernetesEmulator served over HTTP from a thread with its own loop."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(),), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "kmock did not start"

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with UidEmulator() as emulator, kmock.Server(emulator) as server:
            for resource, kind in (("batch/v1/jobs", "Job"), ("v1/pods", "Pod"),
                                   ("v1/configmaps", "ConfigMap")):
                emulator.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=True)
            self.handler, self.url = emulator, str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    def count(self, method: str, path_part: str) -> int:
        return sum(1 for request in list(self.handler)
                   if request.method == method and path_part in str(request.url))


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emulator = Emulator()
    yield emulator
    emulator.stop()


@pytest.fixture
def api(emulator: Emulator) -> client.ApiClient:
    return client.ApiClient(client.Configuration(host=emulator.url))


@pytest.fixture
def site() -> SiteConfig:
    return SiteConfig(name="DESY-K8S", backend="kubernetes", queue=f"ctao-{next(_namespaces)}",
                      slots=2, image=IMAGE, cvmfs="/cvmfs/ctao.dpps.cta-observatory.org")


def backend(site: SiteConfig, api: client.ApiClient) -> KubernetesBackend:
    made = make_backend(site, {"api_client": api})
    assert isinstance(made, KubernetesBackend)
    return made


def jobs(n: int = 3, **kw: Any) -> list[JobSpec]:
    return [JobSpec(name=f"prod5b.proc.{i}.0", command=("ctapipe-process", f"--input=f{i}"),
                    workdir=f"/work/{i}", cores=1 + i % 2, memory_mb=2000 + 100 * i,
                    walltime_s=600 + i, **kw) for i in range(n)]


def pod(job_name: str, index: int, phase: str, created: str = "2026-01-01T00:00:00Z",
        **status: Any) -> dict[str, Any]:
    """A pod as the Job controller and the kubelet would leave it."""
    return {"metadata": {"name": f"{job_name}-{index}-{created[11:19].replace(':', '')}",
                         "creationTimestamp": created,
                         "labels": {CHUNK_LABEL: job_name,
                                    "app.kubernetes.io/managed-by": "ctaoflow",
                                    "ctaoflow.cta-observatory.org/site": "DESY-K8S",
                                    "batch.kubernetes.io/job-name": job_name},
                         "annotations": {INDEX_ANNOTATION: str(index)}},
            "spec": {"containers": [{"name": "job", "image": IMAGE}]},
            "status": {"phase": phase, **status}}


def terminated(code: int, reason: str) -> dict[str, Any]:
    return {"containerStatuses": [{"name": "job", "image": IMAGE, "imageID": "", "ready": False,
                                   "restartCount": 0,
                                   "state": {"terminated": {"exitCode": code, "reason": reason}}}]}


# --- manifests ------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.31.0", kubernetes_validate.utils.latest_version()])
def test_manifests_validate_against_the_schemas(site: SiteConfig, version: str) -> None:
    name = chunk_name([job.name for job in jobs()])
    for manifest in (job_manifest(name, site, jobs()),
                     configmap_manifest(name, site, jobs(), owner_uid="5b1c0e2a-uid")):
        kubernetes_validate.validate(manifest, version, strict=True)
    pvc_site = SiteConfig(**{**site.to_dict(), "storages": (), "options": {
        "cvmfs_pvc": "cvmfs", "work_pvc": "ctao-work", "service_account": "ctaoflow"}})
    kubernetes_validate.validate(job_manifest(name, pvc_site, jobs()), version, strict=True)


def test_job_manifest_content(site: SiteConfig) -> None:
    manifest = job_manifest("cf-x-0123456789", site, jobs(5))
    spec = manifest["spec"]
    assert manifest["metadata"]["namespace"] == site.queue
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 5
    assert spec["parallelism"] == 2  # min(5 jobs, 2 slots)
    assert spec["backoffLimitPerIndex"] == 0 and spec["ttlSecondsAfterFinished"] == 86400
    assert spec["activeDeadlineSeconds"] == 604 * 3 * 2  # walltime x waves x 2
    pod_spec = spec["template"]["spec"]
    assert pod_spec["activeDeadlineSeconds"] == 604 and pod_spec["restartPolicy"] == "Never"
    [container] = pod_spec["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == ["python3", "-m", "ctaoflow.runner",
                                    "/etc/ctaoflow/manifest.jsonl", "$(JOB_COMPLETION_INDEX)"]
    assert container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "2400Mi"},
                                      "limits": {"memory": "2400Mi"}}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["manifest"] == {"name": "manifest", "configMap": {"name": "cf-x-0123456789"}}
    assert volumes["cvmfs"]["hostPath"] == {"path": site.cvmfs, "type": "Directory"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["cvmfs"]["readOnly"] and mounts["cvmfs"]["mountPath"] == site.cvmfs
    assert json.loads(manifest["metadata"]["annotations"]["ctaoflow.cta-observatory.org/jobs"]) \
        == [f"prod5b.proc.{i}.0" for i in range(5)]


def test_cvmfs_through_a_csi_claim(site: SiteConfig) -> None:
    csi = SiteConfig(**{**site.to_dict(), "options": {"cvmfs_pvc": "cvmfs-ctao"}})
    pod_spec = job_manifest("n", csi, jobs())["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["cvmfs"]["persistentVolumeClaim"] == {"claimName": "cvmfs-ctao",
                                                         "readOnly": True}


def test_hostile_arguments_only_in_the_configmap(site: SiteConfig, tmp_path: Path) -> None:
    out = tmp_path / "argv.txt"
    job = JobSpec(name="prod5b.proc.9.0", workdir=str(tmp_path / "w"), env={"X": "$(Y)"},
                  command=(sys.executable, "-c",
                           f"import sys; open({str(out)!r}, 'w').write(repr(sys.argv[1:]))",
                           *HOSTILE))
    chunk = [*jobs(1), job]
    assert "rm -rf" not in json.dumps(job_manifest("n", site, chunk))
    data = configmap_manifest("n", site, chunk)["data"][MANIFEST_KEY]
    assert json.loads(data.splitlines()[1]) == job.to_dict()
    # what the container does: the runner reads the mounted manifest at its index
    (tmp_path / MANIFEST_KEY).write_text(data)
    subprocess.run([sys.executable, "-m", "ctaoflow.runner",
                    str(tmp_path / MANIFEST_KEY), "1"], check=True)
    assert out.read_text() == repr(list(HOSTILE))


def test_chunk_names_are_dns_labels() -> None:
    name = chunk_name(["Prod5b_LaPalma.CtapipeProcessing.123456789.0" * 3])
    assert len(name) <= 63 and name == name.lower() and name[0].isalpha() and name[-1].isalnum()
    assert chunk_name(["a.b.1.0", "a.b.2.0"]) != chunk_name(["a.b.1.0", "a.b.2.1"])


def test_oversized_manifest_and_missing_image_are_refused(site: SiteConfig) -> None:
    big = [JobSpec(name="p.t.1.0", command=("x" * 1_100_000,), workdir="/w")]
    with pytest.raises(BackendError, match="^site DESY-K8S: the manifest of 1 jobs exceeds"):
        configmap_manifest("n", site, big)
    bare = SiteConfig(name="DESY-K8S", backend="kubernetes")
    with pytest.raises(BackendError, match="^site DESY-K8S: Kubernetes jobs need an image"):
        job_manifest("n", bare, jobs(1))


def test_index_list_parsing() -> None:
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert parse_indexes(None) == set()


@pytest.mark.parametrize("pod_status, expected", [
    ({"phase": "Failed", **terminated(137, "OOMKilled")},
     JobStatus(JobState.OUT_OF_MEMORY, 137, "OOMKilled")),
    ({"phase": "Failed", "reason": "DeadlineExceeded", "message": DEADLINE_MESSAGE},
     JobStatus(JobState.TIMEOUT, None, DEADLINE_MESSAGE)),
    ({"phase": "Failed", "reason": "Evicted", **terminated(137, "Error")},
     JobStatus(JobState.NODE_FAIL, 137, "Evicted")),
    ({"phase": "Failed", **terminated(3, "Error")}, JobStatus(JobState.FAILED, 3, "Error")),
    ({"phase": "Running"}, JobStatus(JobState.RUNNING)),
    ({"phase": "Pending", "containerStatuses": [
        {"name": "job", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]},
     JobStatus(JobState.PENDING, reason="ImagePullBackOff")),
])
def test_index_status_from_pods(pod_status: dict[str, Any], expected: JobStatus) -> None:
    job = {"metadata": {"name": "j"}, "status": {"completedIndexes": "0", "failedIndexes": "1"}}
    assert index_status(job, 2, {"status": pod_status}) == expected


def test_index_status_from_the_job() -> None:
    deadline = {"status": {"completedIndexes": "0", "conditions": [
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}}
    assert index_status(deadline, 0, None) == JobStatus(JobState.DONE, 0)
    assert index_status(deadline, 1, {"status": {"phase": "Running"}}).state is JobState.TIMEOUT
    failed = {"status": {"failedIndexes": "3"}}
    assert index_status(failed, 3, None).state is JobState.FAILED
    assert index_status({"status": {}}, 4, None).state is JobState.PENDING


# --- against the emulator -------------------------------------------------------------

def test_submit_creates_job_and_configmap(site: SiteConfig, api: client.ApiClient) -> None:
    chunk = jobs(3)
    ids = backend(site, api).submit(chunk)
    name = chunk_name([job.name for job in chunk])
    assert ids == {job.name: f"{name}/{i}" for i, job in enumerate(chunk)}
    job = client.BatchV1Api(api).read_namespaced_job(name, site.queue)
    assert job.spec.completions == 3 and job.spec.completion_mode == "Indexed"
    configmap = client.CoreV1Api(api).read_namespaced_config_map(name, site.queue)
    lines = configmap.data[MANIFEST_KEY].splitlines()
    assert [json.loads(line)["name"] for line in lines] == list(ids)
    [owner] = configmap.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("Job", name, job.metadata.uid)


def test_resubmission_and_find_reconnect(site: SiteConfig, api: client.ApiClient,
                                         emulator: Emulator) -> None:
    chunk = jobs(4)
    ids = backend(site, api).submit(chunk)
    name = chunk_name([job.name for job in chunk])
    client.CoreV1Api(api).delete_namespaced_config_map(name, site.queue)  # a half-done submit
    assert backend(site, api).submit(chunk) == ids  # 409 on the same chunk: same ids
    configmap = client.CoreV1Api(api).read_namespaced_config_map(name, site.queue)
    job = client.BatchV1Api(api).read_namespaced_job(name, site.queue)
    assert configmap.metadata.owner_references[0].uid == job.metadata.uid
    fresh = client.ApiClient(client.Configuration(host=emulator.url))  # a restarted triggerer
    names = [job.name for job in chunk]
    assert backend(site, fresh).find([*names, "prod5b.proc.99.0"]) == ids
    other_site = SiteConfig(**{**site.to_dict(), "storages": (), "queue": "elsewhere"})
    assert backend(other_site, fresh).find(names) == {}


def test_sites_sharing_a_namespace_see_only_their_own_jobs(site: SiteConfig,
                                                          api: client.ApiClient) -> None:
    chunk = jobs(2)
    ids = backend(site, api).submit(chunk)
    neighbour = backend(SiteConfig(**{**site.to_dict(), "storages": (), "name": "CSCS-K8S"}), api)
    assert neighbour.find([job.name for job in chunk]) == {}
    assert {s.state for s in neighbour.poll(list(ids.values())).values()} == {JobState.LOST}
    neighbour.cancel(list(ids.values()))
    assert backend(site, api).find([job.name for job in chunk]) == ids  # left alone


def test_poll_maps_job_and_pod_status_in_one_list_per_kind(
        site: SiteConfig, api: client.ApiClient, emulator: Emulator) -> None:
    made = backend(site, api)
    ids = list(made.submit(jobs(6)).values())
    name = ids[0].split("/")[0]
    assert {s.state for s in made.poll(ids).values()} == {JobState.PENDING}

    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    for body in (pod(name, 0, "Succeeded", **terminated(0, "Completed")),
                 pod(name, 1, "Failed", **terminated(3, "Error")),
                 pod(name, 2, "Failed", **terminated(137, "OOMKilled")),
                 pod(name, 3, "Failed", reason="DeadlineExceeded", message="deadline"),
                 pod(name, 4, "Running"),
                 pod(name, 5, "Failed", "2026-01-01T00:00:00Z", **terminated(1, "Error")),
                 pod(name, 5, "Running", "2026-01-01T00:05:00Z")):
        core.create_namespaced_pod(site.queue, body)
    batch.patch_namespaced_job_status(name, site.queue, {"status": {
        "completedIndexes": "0", "failedIndexes": "1-3", "active": 2}})

    lists_before = emulator.count("GET", f"/namespaces/{site.queue}/")
    result = made.poll([*ids, f"{name}/9", "cf-gone-0000000000/0"])
    assert emulator.count("GET", f"/namespaces/{site.queue}/") - lists_before == 2
    assert [result[i] for i in ids] == [
        JobStatus(JobState.DONE, 0), JobStatus(JobState.FAILED, 3, "Error"),
        JobStatus(JobState.OUT_OF_MEMORY, 137, "OOMKilled"),
        JobStatus(JobState.TIMEOUT, None, "deadline"), JobStatus(JobState.RUNNING),
        JobStatus(JobState.RUNNING)]  # index 5: its newest pod runs (a retry)
    assert result[f"{name}/9"].state is JobState.PENDING
    assert result["cf-gone-0000000000/0"].state is JobState.LOST


def test_poll_of_finished_chunk_lists_no_pods(site: SiteConfig, api: client.ApiClient,
                                              emulator: Emulator) -> None:
    made = backend(site, api)
    ids = list(made.submit(jobs(2)).values())
    client.BatchV1Api(api).patch_namespaced_job_status(
        ids[0].split("/")[0], site.queue, {"status": {"completedIndexes": "0-1"}})
    before = emulator.count("GET", f"/namespaces/{site.queue}/pods")
    assert {s.state for s in made.poll(ids).values()} == {JobState.DONE}
    assert emulator.count("GET", f"/namespaces/{site.queue}/pods") == before


def test_cancel_whole_chunk_deletes_the_job(site: SiteConfig, api: client.ApiClient,
                                            emulator: Emulator) -> None:
    made = backend(site, api)
    ids = list(made.submit(jobs(3)).values())
    made.cancel(ids)
    made.cancel(ids)  # already gone: no error
    assert client.BatchV1Api(api).list_namespaced_job(site.queue).items == []
    assert {s.state for s in made.poll(ids).values()} == {JobState.LOST}
    assert any(r.method == "DELETE" and r.params.get("propagationPolicy") == "Background"
               for r in list(emulator.handler))


def test_cancel_some_indexes(site: SiteConfig, api: client.ApiClient) -> None:
    made = backend(site, api)
    ids = list(made.submit(jobs(3)).values())
    name = ids[0].split("/")[0]
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(site.queue, pod(name, 1, "Running"))
    core.create_namespaced_pod(site.queue, pod(name, 0, "Running"))
    made.cancel([ids[1]])
    assert [p.metadata.annotations[INDEX_ANNOTATION]
            for p in core.list_namespaced_pod(site.queue).items] == ["0"]
    states = made.poll(ids)
    assert [states[i].state for i in ids] == [JobState.RUNNING, JobState.CANCELLED,
                                              JobState.PENDING]
    made.cancel([ids[2]])  # annotations accumulate
    assert made.poll(ids)[ids[1]].state is JobState.CANCELLED
    assert made.poll(ids)[ids[2]].state is JobState.CANCELLED


def test_log_reads_the_newest_pod(site: SiteConfig, api: client.ApiClient,
                                  emulator: Emulator) -> None:
    made = backend(site, api)
    ids = list(made.submit(jobs(1)).values())
    name = ids[0].split("/")[0]
    body = pod(name, 0, "Failed", **terminated(2, "Error"))
    client.CoreV1Api(api).create_namespaced_pod(site.queue, body)
    path = f"/api/v1/namespaces/{site.queue}/pods/{body['metadata']['name']}/log"
    emulator.handler[f"get {path}"] << b"line 1\nTraceback: boom\n"
    assert made.log(ids[0]) == "line 1\nTraceback: boom\n"
    assert made.log(ids[0], tail_bytes=5) == "boom\n"
    assert made.log(f"{name}/7") == ""


def test_api_errors_are_one_line_backend_errors(site: SiteConfig) -> None:
    dead = client.ApiClient(client.Configuration(host="http://127.0.0.1:9"))
    dead.configuration.retries = 0
    with pytest.raises(BackendError) as info:
        backend(site, dead).poll(["cf-x/0"])
    assert str(info.value).startswith("site DESY-K8S: listing jobs failed: ")
    assert "\n" not in str(info.value)
