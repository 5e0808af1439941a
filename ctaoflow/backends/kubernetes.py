"""The Kubernetes backend: one Indexed Job per chunk, its manifest in a ConfigMap.

A chunk becomes a ConfigMap holding the JSON-lines manifest of ``JobSpec.to_dict()``
records and an Indexed Job (completions = jobs in the chunk, parallelism =
min(jobs, site.slots), backoffLimitPerIndex 0) whose container runs ``python -m
ctaoflow.runner /etc/ctaoflow/manifest.jsonl $(JOB_COMPLETION_INDEX)``: job
arguments stay in the manifest and never pass through a shell or the pod spec. The
image must contain ctaoflow (the runner needs the standard library only). A job id is
``<Job name>/<index>``; Job names derive from the chunk's job names, so submitting the
same chunk twice returns the same ids. find() lists the site's Jobs by label and reads
their job names from an annotation. poll() makes one list call for Jobs and at most one
for pods in the site's namespace: completedIndexes / failedIndexes, Job conditions and
pod states give each index's state (OOMKilled -> OUT_OF_MEMORY, DeadlineExceeded ->
TIMEOUT, eviction/disruption -> NODE_FAIL); a Job that no longer exists gives LOST.

Walltime: the pod's activeDeadlineSeconds is the chunk's largest walltime; the Job's is
that times the number of waves (jobs / parallelism) times 2 (or ``job_deadline_s``),
so a stuck chunk ends. ``site.slots`` limits parallelism per chunk only: a site-wide
limit needs a ResourceQuota or a queueing controller (Kueue) on the cluster.

cancel(): ids naming a whole Job (``<Job name>`` or all its indexes) delete it with
propagation Background (its ConfigMap goes with it through an ownerReference).
Cancelling some indexes only is approximated: Kubernetes cannot stop one index of an
Indexed Job, so their running pods are deleted (with backoffLimitPerIndex 0 the index
is not retried) and the indexes are recorded in an annotation that poll() reports as
CANCELLED; an index that had not started yet still starts later and runs.

Site options: ``python`` (default ``python3``), ``cvmfs_pvc`` (a PersistentVolumeClaim
of the CVMFS CSI driver; default a read-only hostPath of ``site.cvmfs``), ``work_pvc``
and ``work_mount`` (shared volume for job working directories), ``ttl_s``
(ttlSecondsAfterFinished, default 86400), ``job_deadline_s``, ``service_account``.
Namespace: ``site.queue`` (default ``default``). Connection params: ``api_client`` (a
``kubernetes.client.ApiClient``, e.g. ``KubernetesHook(conn_id).api_client``), or
``kube_config`` / ``context``, or ``in_cluster``.

Tested against: the manifest builders with ``kubernetes-validate`` (the real OpenAPI
schemas, strict); submit / find / poll / cancel / log through the official client
against kmock's in-memory API emulator, where the tests set Job and pod status
themselves (the emulator runs no controllers; the tests make it honour label selectors,
so a site sees only its own Jobs and pods).
No real cluster is used in CI.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ctaoflow.backends.base import Backend, BackendError, JobSpec, JobState, JobStatus, SiteConfig

DOMAIN = "ctaoflow.cta-observatory.org"
MANAGED = "app.kubernetes.io/managed-by"
SITE_LABEL = f"{DOMAIN}/site"
CHUNK_LABEL = f"{DOMAIN}/chunk"
JOBS_ANNOTATION = f"{DOMAIN}/jobs"
CANCELLED_ANNOTATION = f"{DOMAIN}/cancelled-indexes"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
MANIFEST_DIR = "/etc/ctaoflow"
MANIFEST_KEY = "manifest.jsonl"
CONTAINER = "job"
CONFIGMAP_LIMIT = 1_000_000  # bytes; the API server refuses ConfigMaps over 1 MiB
_DISRUPTED = ("Evicted", "NodeLost", "Preempting", "Terminated")


def label_value(text: str) -> str:
    """``text`` as a valid label value (<= 63 characters, alphanumeric ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned) or "x"


def chunk_name(names: Sequence[str]) -> str:
    """A DNS-1123 Job name (<= 63) from the chunk's job names: readable prefix + hash."""
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:10]
    first = re.sub(r"[^a-z0-9]+", "-", names[0].lower()).strip("-")[:42].rstrip("-")
    return f"cf-{first}-{digest}" if first else f"cf-{digest}"


def site_labels(site: SiteConfig) -> dict[str, str]:
    return {MANAGED: "ctaoflow", SITE_LABEL: label_value(site.name)}


def selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in labels.items())


@functools.lru_cache(maxsize=256)
def parse_indexes(text: str | None) -> frozenset[int]:
    """Kubernetes' index list (``"1,3-5,7"``) as a set (cached: polls reread it per index)."""
    indexes: set[int] = set()
    for part in filter(None, (text or "").split(",")):
        first, _, last = part.partition("-")
        indexes.update(range(int(first), int(last or first) + 1))
    return frozenset(indexes)


def _image(site: SiteConfig, jobs: Sequence[JobSpec]) -> str:
    images = {job.image or site.image for job in jobs}
    if None in images:
        raise BackendError(f"site {site.name}: Kubernetes jobs need an image (site.image or "
                           "JobSpec.image)")
    if len(images) > 1:
        raise BackendError(f"site {site.name}: a chunk must use one image, "
                           f"got {sorted(map(str, images))}")
    return str(images.pop())


def configmap_manifest(name: str, site: SiteConfig, jobs: Sequence[JobSpec],
                       owner_uid: str | None = None) -> dict[str, Any]:
    """The chunk's ConfigMap: the runner's manifest, owned by the Job when its uid is known."""
    manifest = "".join(json.dumps(job.to_dict()) + "\n" for job in jobs)
    if len(manifest.encode()) > CONFIGMAP_LIMIT:
        raise BackendError(f"site {site.name}: the manifest of {len(jobs)} jobs exceeds a "
                           "ConfigMap's 1 MiB; use smaller chunks")
    metadata: dict[str, Any] = {"name": name, "namespace": site.queue or "default",
                                "labels": {**site_labels(site), CHUNK_LABEL: name}}
    if owner_uid:
        metadata["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                        "uid": owner_uid, "blockOwnerDeletion": False}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "data": {MANIFEST_KEY: manifest}}


def _volumes(name: str, site: SiteConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's volumes and the container's mounts: manifest, CVMFS, work area."""
    volumes: list[dict[str, Any]] = [{"name": "manifest", "configMap": {"name": name}}]
    mounts: list[dict[str, Any]] = [{"name": "manifest", "mountPath": MANIFEST_DIR,
                                     "readOnly": True}]
    options = site.options
    if site.cvmfs:
        source: dict[str, Any] = (
            {"persistentVolumeClaim": {"claimName": options["cvmfs_pvc"], "readOnly": True}}
            if options.get("cvmfs_pvc") else
            {"hostPath": {"path": site.cvmfs, "type": "Directory"}})
        volumes.append({"name": "cvmfs", **source})
        mounts.append({"name": "cvmfs", "mountPath": site.cvmfs, "readOnly": True,
                       "mountPropagation": "HostToContainer"})
    if options.get("work_pvc"):
        volumes.append({"name": "work",
                        "persistentVolumeClaim": {"claimName": options["work_pvc"]}})
        mounts.append({"name": "work", "mountPath": options.get("work_mount", "/work")})
    return volumes, mounts


def job_manifest(name: str, site: SiteConfig, jobs: Sequence[JobSpec]) -> dict[str, Any]:
    """The chunk's Indexed Job; the pod takes the largest request of the chunk's jobs."""
    count = len(jobs)
    parallelism = max(1, min(count, site.slots))
    walltime = max(job.walltime_s for job in jobs)
    memory = f"{max(job.memory_mb for job in jobs)}Mi"
    labels = {**site_labels(site), CHUNK_LABEL: name}
    volumes, mounts = _volumes(name, site)
    container = {
        "name": CONTAINER,
        "image": _image(site, jobs),
        "command": [str(site.options.get("python", "python3")), "-m", "ctaoflow.runner",
                    f"{MANIFEST_DIR}/{MANIFEST_KEY}", "$(JOB_COMPLETION_INDEX)"],
        "env": [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}}}],
        "resources": {"requests": {"cpu": str(max(job.cores for job in jobs)), "memory": memory},
                      "limits": {"memory": memory}},
        "volumeMounts": mounts,
    }
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "activeDeadlineSeconds": walltime,
                                "containers": [container], "volumes": volumes}
    if site.options.get("service_account"):
        pod_spec["serviceAccountName"] = site.options["service_account"]
    deadline = site.options.get("job_deadline_s") or walltime * math.ceil(count / parallelism) * 2
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": site.queue or "default", "labels": labels,
                     "annotations": {JOBS_ANNOTATION: json.dumps([job.name for job in jobs])}},
        "spec": {
            "completionMode": "Indexed", "completions": count, "parallelism": parallelism,
            "backoffLimitPerIndex": 0, "activeDeadlineSeconds": int(deadline),
            "ttlSecondsAfterFinished": int(site.options.get("ttl_s", 86400)),
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def pod_index(pod: Mapping[str, Any]) -> int | None:
    metadata = pod.get("metadata", {})
    value = (metadata.get("annotations") or {}).get(INDEX_ANNOTATION) or \
        (metadata.get("labels") or {}).get(INDEX_ANNOTATION)
    return int(value) if value is not None else None


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses") or ():
        if status.get("name") == CONTAINER:
            return (status.get("state") or {}).get("terminated") or {}
    return {}


def _waiting_reason(pod: Mapping[str, Any]) -> str:
    for status in pod.get("status", {}).get("containerStatuses") or ():
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return str(waiting["reason"])
    return ""


def failed_pod_status(pod: Mapping[str, Any] | None) -> JobStatus:
    """The state of an index whose pod failed."""
    if pod is None:
        return JobStatus(JobState.FAILED, reason="failed; its pod is gone")
    status = pod.get("status", {})
    terminated = _terminated(pod)
    code = terminated.get("exitCode")
    if status.get("reason") == "DeadlineExceeded":
        return JobStatus(JobState.TIMEOUT, code, str(status.get("message") or "DeadlineExceeded"))
    if terminated.get("reason") == "OOMKilled":
        return JobStatus(JobState.OUT_OF_MEMORY, code, "OOMKilled")
    conditions = {c.get("type") for c in status.get("conditions") or ()}
    if status.get("reason") in _DISRUPTED or "DisruptionTarget" in conditions:
        return JobStatus(JobState.NODE_FAIL, code, str(status.get("reason") or "DisruptionTarget"))
    return JobStatus(JobState.FAILED, code, str(terminated.get("reason") or status.get("reason")
                                                 or ""))


def _failed_condition(job: Mapping[str, Any]) -> str | None:
    for condition in job.get("status", {}).get("conditions") or ():
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return str(condition.get("reason") or "Failed")
    return None


def index_status(job: Mapping[str, Any], index: int, pod: Mapping[str, Any] | None) -> JobStatus:
    """One index's state from its Job and its latest pod (None if it has none)."""
    status = job.get("status", {})
    if index in parse_indexes(status.get("completedIndexes")):
        return JobStatus(JobState.DONE, 0)
    annotations = job.get("metadata", {}).get("annotations") or {}
    if index in parse_indexes(annotations.get(CANCELLED_ANNOTATION)):
        return JobStatus(JobState.CANCELLED, reason="cancelled by ctaoflow")
    failed_job = _failed_condition(job)
    if failed_job == "DeadlineExceeded":
        return JobStatus(JobState.TIMEOUT, reason="the Job's activeDeadlineSeconds passed")
    phase = (pod or {}).get("status", {}).get("phase")
    if index in parse_indexes(status.get("failedIndexes")) or phase == "Failed":
        return failed_pod_status(pod)
    if phase == "Succeeded":
        return JobStatus(JobState.DONE, 0)
    if failed_job:
        return JobStatus(JobState.CANCELLED, reason=f"the Job failed ({failed_job}) first")
    if phase == "Running":
        return JobStatus(JobState.RUNNING)
    return JobStatus(JobState.PENDING, reason=_waiting_reason(pod or {}))


def _split_id(job_id: str) -> tuple[str, int | None]:
    name, _, index = job_id.partition("/")
    return name, int(index) if index.isdigit() else None


def _latest_pods(pods: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], Mapping[str, Any]]:
    """The newest pod of each (Job name, index)."""
    latest: dict[tuple[str, int], Mapping[str, Any]] = {}
    for pod in sorted(pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp") or ""):
        chunk = (pod.get("metadata", {}).get("labels") or {}).get(CHUNK_LABEL)
        index = pod_index(pod)
        if chunk and index is not None:
            latest[(chunk, index)] = pod
    return latest


class KubernetesBackend(Backend):
    """Jobs as indexes of one Indexed Job per chunk, in the site's namespace."""

    _api: Any = None

    @property
    def namespace(self) -> str:
        return self.site.queue or "default"

    @property
    def api(self) -> Any:
        """The ApiClient: ``params['api_client']``, a kube config, or in-cluster config."""
        if self._api is None:
            self._api = self.params.get("api_client") or self._call(
                "loading the Kubernetes configuration", _api_client_from, self.params)
        return self._api

    def _call(self, what: str, function: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return function(*args, **kw)
        except Exception as exc:
            raise BackendError(f"site {self.site.name}: {what} failed: {_describe(exc)}") from exc

    def _list(self, kind: str) -> list[dict[str, Any]]:
        """One list call, decoded as plain dicts (no model objects: fast for 5,000 pods)."""
        from kubernetes import client

        api = client.BatchV1Api(self.api) if kind == "job" else client.CoreV1Api(self.api)
        method = getattr(api, f"list_namespaced_{kind}")
        response = self._call(f"listing {kind}s", method, self.namespace,
                              label_selector=selector(site_labels(self.site)),
                              _preload_content=False)
        return json.loads(response.data).get("items") or []

    def _create(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create an object; None if it already exists (submission is idempotent)."""
        from kubernetes import client

        api = client.BatchV1Api(self.api) if kind == "job" else client.CoreV1Api(self.api)
        method = getattr(api, f"create_namespaced_{kind}")
        try:
            response = method(self.namespace, body, _preload_content=False)
        except client.ApiException as exc:
            if exc.status == 409:
                return None
            raise BackendError(f"site {self.site.name}: creating {kind} "
                               f"{body['metadata']['name']} failed: {_describe(exc)}") from exc
        except Exception as exc:
            raise BackendError(f"site {self.site.name}: creating {kind} failed: "
                               f"{_describe(exc)}") from exc
        return json.loads(response.data)

    def submit(self, jobs: Sequence[JobSpec]) -> dict[str, str]:
        if not jobs:
            return {}
        names = [job.name for job in jobs]
        name = chunk_name(names)
        configmap_manifest(name, self.site, jobs)  # refuse an oversized chunk before creating
        created = self._create("job", job_manifest(name, self.site, jobs)) or self._read_job(name)
        uid = created.get("metadata", {}).get("uid")
        self._create("config_map", configmap_manifest(name, self.site, jobs, uid))
        return {job_name: f"{name}/{index}" for index, job_name in enumerate(names)}

    def _read_job(self, name: str) -> dict[str, Any]:
        """The Job a previous submission created (its uid owns the ConfigMap)."""
        from kubernetes import client

        read = client.BatchV1Api(self.api).read_namespaced_job
        response = self._call(f"reading Job {name}", read, name, self.namespace,
                              _preload_content=False)
        return json.loads(response.data)

    def find(self, names: Sequence[str]) -> dict[str, str]:
        wanted = set(names)
        found: dict[str, str] = {}
        for job in self._list("job") if wanted else ():
            metadata = job.get("metadata", {})
            listed = json.loads((metadata.get("annotations") or {}).get(JOBS_ANNOTATION, "[]"))
            found |= {job_name: f"{metadata['name']}/{index}"
                      for index, job_name in enumerate(listed) if job_name in wanted}
        return found

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        wanted = {_split_id(job_id) for job_id in job_ids}
        chunks = {name for name, _ in wanted}
        jobs = {job["metadata"]["name"]: job for job in self._list("job")
                if job.get("metadata", {}).get("name") in chunks}
        unfinished = any(name in jobs and index not in parse_indexes(
            jobs[name].get("status", {}).get("completedIndexes")) for name, index in wanted)
        pods = _latest_pods(self._list("pod")) if unfinished else {}
        lost = JobStatus(JobState.LOST, reason="Kubernetes Job not found (deleted or expired)")
        result: dict[str, JobStatus] = {}
        for job_id in job_ids:
            name, index = _split_id(job_id)
            if name not in jobs or index is None:
                result[job_id] = lost
            else:
                result[job_id] = index_status(jobs[name], index, pods.get((name, index)))
        return result

    def cancel(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        from kubernetes import client

        requested: dict[str, set[int | None]] = defaultdict(set)
        for job_id in job_ids:
            name, index = _split_id(job_id)
            requested[name].add(index)
        jobs = {job["metadata"]["name"]: job for job in self._list("job")
                if job.get("metadata", {}).get("name") in requested}
        batch = client.BatchV1Api(self.api)
        partial: dict[str, set[int]] = {}
        for name, job in jobs.items():
            indexes = requested[name]
            if None in indexes or len(indexes) >= int(job.get("spec", {}).get("completions", 0)):
                self._ignore_missing(f"deleting Job {name}", batch.delete_namespaced_job, name,
                                     self.namespace, propagation_policy="Background")
            else:
                partial[name] = {i for i in indexes if i is not None}
        if partial:
            self._cancel_indexes(jobs, partial)

    def _cancel_indexes(self, jobs: Mapping[str, Mapping[str, Any]],
                        partial: Mapping[str, set[int]]) -> None:
        """Record the indexes as cancelled on their Job, then delete their pods."""
        from kubernetes import client

        batch, core = client.BatchV1Api(self.api), client.CoreV1Api(self.api)
        for name, indexes in partial.items():
            annotations = jobs[name].get("metadata", {}).get("annotations") or {}
            merged = indexes | parse_indexes(annotations.get(CANCELLED_ANNOTATION))
            patch = {"metadata": {"annotations": {
                CANCELLED_ANNOTATION: ",".join(map(str, sorted(merged)))}}}
            self._call(f"annotating Job {name}", batch.patch_namespaced_job, name,
                       self.namespace, patch)
        for pod in self._list("pod"):
            metadata = pod.get("metadata", {})
            chunk = str((metadata.get("labels") or {}).get(CHUNK_LABEL))
            if pod_index(pod) in partial.get(chunk, ()):
                self._ignore_missing(f"deleting pod {metadata['name']}",
                                     core.delete_namespaced_pod, metadata["name"], self.namespace)

    def _ignore_missing(self, what: str, function: Callable[..., Any], *args: Any,
                        **kw: Any) -> None:
        from kubernetes import client

        try:
            function(*args, **kw)
        except client.ApiException as exc:
            if exc.status != 404:
                raise BackendError(f"site {self.site.name}: {what} failed: "
                                   f"{_describe(exc)}") from exc

    def log(self, job_id: str, tail_bytes: int = 20000) -> str:
        from kubernetes import client

        name, index = _split_id(job_id)
        pod = _latest_pods(self._list("pod")).get((name, index)) if index is not None else None
        if pod is None:
            return ""
        response = self._call("reading the pod log",
                              client.CoreV1Api(self.api).read_namespaced_pod_log,
                              pod["metadata"]["name"], self.namespace, container=CONTAINER,
                              tail_lines=max(100, tail_bytes // 20), _preload_content=False)
        return response.data[-tail_bytes:].decode(errors="replace")


def _api_client_from(params: Mapping[str, Any]) -> Any:
    from kubernetes import client, config

    if params.get("in_cluster"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    return config.new_client_from_config(config_file=params.get("kube_config"),
                                         context=params.get("context"))


def _describe(exc: Exception) -> str:
    """A one-line description of a client error (the API's own message when it sent one)."""
    status, body = getattr(exc, "status", None), getattr(exc, "body", None)
    message = str(exc)
    if body:
        try:
            message = json.loads(body).get("message") or message
        except (TypeError, ValueError, AttributeError):
            message = str(body)
    text = " ".join(message.split())[:300]
    return f"HTTP {status}: {text}" if status else text
