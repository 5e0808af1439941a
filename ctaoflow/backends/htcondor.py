"""The HTCondor backend: one cluster per chunk, one proc per job, via ``htcondor2``.

A chunk is written as a JSON-lines manifest of ``JobSpec.to_dict()`` records and
submitted as ONE submit with itemdata (one item per job: manifest index, job name,
cores, memory, walltime). Each proc runs ``python -m ctaoflow.runner
MANIFEST INDEX``, so job arguments travel in the manifest and never through the submit
language. The batch name (``JobBatchName``) is the chunk's common dotted name prefix
(``<production>.<transformation>``); each proc carries its job name in ``CtaoflowJob``
and its site in ``CtaoflowSite``. Walltime is ``allowed_execute_duration`` (held with
HoldReasonCode 47, mapped to TIMEOUT) plus ``+MaxRuntime`` for sites whose policy reads
it. Held jobs are final for ctaoflow and stay in the queue until ``cancel()`` removes
them.

Site options: ``python`` (interpreter on the worker, default ``python3``),
``spool_dir`` (shared folder for manifests and job output, default
``$CTAOFLOW_HOME/htcondor/<site>``), ``transfer_manifest`` (ship the manifest with
HTCondor file transfer instead of relying on a shared file system),
``container_style`` (``container`` -> ``container_image``; ``singularity`` ->
``+SingularityImage``). Connection params: ``schedd_name`` and ``collector`` to locate
a remote schedd, or ``schedd`` (an object with ScheddAdapter's methods).

Tested against: recorded schedd answers only (ClassAds in ``tests/data/htcondor/``, in
``condor_q -long`` / ``condor_history -long`` text, parsed with ``classad2``), through
a fake ScheddAdapter; submit descriptions are parsed back with ``htcondor2.Submit``.
No HTCondor pool runs in CI, so the ``htcondor2`` calls inside ScheddAdapter are not
exercised there.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ctaoflow import settings
from ctaoflow.backends.base import Backend, BackendError, JobSpec, JobState, JobStatus

PROJECTION = ["ClusterId", "ProcId", "JobStatus", "CtaoflowJob", "ExitCode", "ExitBySignal",
              "ExitSignal", "HoldReasonCode", "HoldReasonSubCode", "HoldReason",
              "RemoveReason", "Out", "Err"]
ITEM_KEYS = ("ctaoflow_index", "ctaoflow_job", "ctaoflow_cpus", "ctaoflow_memory",
             "ctaoflow_walltime")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.:+@-]+$")
_TIMEOUT_WORDS = ("walltime", "maxruntime", "execute duration", "allowed duration",
                  "wall time", "runtime exceeded")
_MEMORY_WORDS = ("memory",)
_TRANSIENT_HOLDS = {15, 16}  # SubmittedOnHold, SpoolingInput
_TIMEOUT_HOLDS = {46, 47}  # JobDurationExceeded, JobExecuteExceeded
_MEMORY_HOLDS = {34}  # JobOutOfResources: memory usage exceeds a memory limit


class ScheddAdapter:
    """The four schedd calls the backend makes, around ``htcondor2.Schedd``."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        import htcondor2  # lazy: importing ctaoflow never needs HTCondor

        self._htcondor = htcondor2
        if params.get("schedd_name"):
            collector = htcondor2.Collector(params.get("collector"))
            location = collector.locate(htcondor2.DaemonType.Schedd, params["schedd_name"])
            self._schedd = htcondor2.Schedd(location)
        else:
            self._schedd = htcondor2.Schedd()

    def submit(self, description: Mapping[str, str], items: list[dict[str, str]]) -> int:
        result = self._schedd.submit(self._htcondor.Submit(dict(description)),
                                     itemdata=iter(items))
        return result.cluster()

    def query(self, constraint: str, projection: list[str]) -> list[Mapping[str, Any]]:
        return self._schedd.query(constraint, projection)

    def history(self, constraint: str, projection: list[str],
                match: int = -1) -> list[Mapping[str, Any]]:
        return self._schedd.history(constraint, projection, match=match)

    def remove(self, job_ids: list[str], reason: str) -> None:
        self._schedd.act(self._htcondor.JobAction.Remove, job_ids, reason)


def batch_name(names: Sequence[str]) -> str:
    """The common dotted prefix of the names (``<production>.<transformation>``)."""
    parts = [name.split(".") for name in names]
    common: list[str] = []
    for group in zip(*parts, strict=False):
        if len(set(group)) > 1:
            break
        common.append(group[0])
    return ".".join(common) or "ctaoflow"


def _batch_candidates(names: Sequence[str]) -> list[str]:
    """Every batch name a chunk holding all these names could have been given."""
    prefix = batch_name(names).split(".")
    return [".".join(prefix[:n]) for n in range(1, len(prefix) + 1)] + ["ctaoflow"]


def manifest_name(names: Sequence[str]) -> str:
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]
    return f"{batch_name(names)}-{digest}.jsonl"


def _quote_arg(arg: str) -> str:
    """One argument in HTCondor's new argument syntax (inside the double quotes)."""
    return "'" + arg.replace("'", "''").replace('"', '""') + "'"


def submit_description(site_name: str, options: Mapping[str, Any], jobs: Sequence[JobSpec],
                       manifest: Path, output_dir: Path, image: str | None) -> dict[str, str]:
    """The submit description of a chunk; per-job values come from itemdata variables."""
    transfer = bool(options.get("transfer_manifest"))
    manifest_arg = manifest.name if transfer else str(manifest)
    args = ["-m", "ctaoflow.runner", manifest_arg]
    description = {
        "universe": "vanilla",
        "executable": str(options.get("python", "python3")),
        "transfer_executable": "false",
        "arguments": '"' + " ".join(_quote_arg(a) for a in args) + ' $(ctaoflow_index)"',
        "batch_name": batch_name([job.name for job in jobs]),
        "MY.CtaoflowJob": '"$(ctaoflow_job)"',
        "MY.CtaoflowSite": json.dumps(site_name),
        "request_cpus": "$(ctaoflow_cpus)",
        "request_memory": "$(ctaoflow_memory)",
        "allowed_execute_duration": "$(ctaoflow_walltime)",
        "MY.MaxRuntime": "$(ctaoflow_walltime)",
        "log": str(output_dir / "$(ctaoflow_job).log"),
        "output": str(output_dir / "$(ctaoflow_job).out"),
        "error": str(output_dir / "$(ctaoflow_job).err"),
    }
    if transfer:
        description |= {"should_transfer_files": "YES", "when_to_transfer_output": "ON_EXIT",
                        "transfer_input_files": str(manifest)}
    if image and options.get("container_style", "container") == "singularity":
        description["MY.SingularityImage"] = json.dumps(image)
    elif image:
        description |= {"universe": "container", "container_image": image}
    return description


def item_data(jobs: Sequence[JobSpec]) -> list[dict[str, str]]:
    """One itemdata entry per job, in manifest order (proc N runs manifest entry N)."""
    return [dict(zip(ITEM_KEYS, (str(index), job.name, str(job.cores), str(job.memory_mb),
                                 str(job.walltime_s)), strict=True))
            for index, job in enumerate(jobs)]


def _classify(text: str) -> JobState | None:
    lowered = text.lower()
    if any(word in lowered for word in _TIMEOUT_WORDS):
        return JobState.TIMEOUT
    if any(word in lowered for word in _MEMORY_WORDS):
        return JobState.OUT_OF_MEMORY
    return None


def _held_status(ad: Mapping[str, Any]) -> JobStatus:
    code = int(ad.get("HoldReasonCode") or 0)
    reason = f"held (code {code}): {ad.get('HoldReason', '')}".rstrip(": ")
    if code in _TRANSIENT_HOLDS:
        return JobStatus(JobState.PENDING, reason=reason)
    if code in _TIMEOUT_HOLDS:
        return JobStatus(JobState.TIMEOUT, reason=reason)
    if code in _MEMORY_HOLDS:
        return JobStatus(JobState.OUT_OF_MEMORY, reason=reason)
    return JobStatus(_classify(str(ad.get("HoldReason", ""))) or JobState.FAILED, reason=reason)


def _completed_status(ad: Mapping[str, Any]) -> JobStatus:
    if ad.get("ExitBySignal"):
        signal = int(ad.get("ExitSignal") or 0)
        return JobStatus(JobState.FAILED, 128 + signal, f"killed by signal {signal}")
    code = int(ad.get("ExitCode") or 0)
    return JobStatus(JobState.DONE if code == 0 else JobState.FAILED, code)


def job_status(ad: Mapping[str, Any]) -> JobStatus:
    """Map one job ClassAd (queue or history) to a JobStatus."""
    status = int(ad.get("JobStatus") or 0)
    if status == 1:
        return JobStatus(JobState.PENDING)
    if status == 2:
        return JobStatus(JobState.RUNNING)
    if status == 3:
        reason = str(ad.get("RemoveReason", ""))
        return JobStatus(_classify(reason) or JobState.CANCELLED, reason=reason)
    if status == 4:
        return _completed_status(ad)
    if status == 5:
        return _held_status(ad)
    if status == 6:
        return JobStatus(JobState.RUNNING, reason="transferring output")
    if status == 7:
        return JobStatus(JobState.RUNNING, reason="suspended")
    return JobStatus(JobState.LOST, reason=f"unknown JobStatus {status}")


def _job_id(ad: Mapping[str, Any]) -> str:
    return f"{int(ad['ClusterId'])}.{int(ad['ProcId'])}"


def _jobs_constraint(job_ids: Iterable[str]) -> str:
    """Exactly these jobs: ``(ClusterId == 12 && member(ProcId, {0, 1})) || ...``."""
    procs: dict[int, list[int]] = defaultdict(list)
    for job_id in job_ids:
        cluster, proc = job_id.split(".")
        procs[int(cluster)].append(int(proc))
    return " || ".join(f"(ClusterId == {cluster} && member(ProcId, {{{_join(sorted(ps))}}}))"
                       for cluster, ps in sorted(procs.items()))


def _join(numbers: Iterable[int]) -> str:
    return ", ".join(map(str, numbers))


def _check_id(site: str, job_id: str) -> None:
    if not re.fullmatch(r"\d+\.\d+", job_id):
        raise BackendError(f"site {site}: {job_id!r} is not an HTCondor job id (cluster.proc)")


class HTCondorBackend(Backend):
    """Jobs on an HTCondor schedd: a cluster per chunk, itemdata per job."""

    _schedd: Any = None

    @property
    def schedd(self) -> Any:
        """``params['schedd']`` if given (tests, custom access), else a ScheddAdapter."""
        if self._schedd is None:
            self._schedd = self.params.get("schedd") or self._call(
                "locating the schedd", ScheddAdapter, self.params)
        return self._schedd

    @property
    def spool(self) -> Path:
        default = settings.home() / "htcondor" / self.site.name
        return Path(self.site.options.get("spool_dir") or default)

    def _call(self, what: str, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except Exception as exc:  # htcondor2 raises HTCondorException, RuntimeError, ...
            detail = " ".join(str(exc).split())
            raise BackendError(f"site {self.site.name}: {what} failed: {detail}") from exc

    def _image(self, jobs: Sequence[JobSpec]) -> str | None:
        images = {job.image or self.site.image for job in jobs}
        if len(images) > 1:
            raise BackendError(f"site {self.site.name}: a chunk must use one image, "
                               f"got {sorted(map(str, images))}")
        return images.pop()

    def submit(self, jobs: Sequence[JobSpec]) -> dict[str, str]:
        if not jobs:
            return {}
        for job in jobs:
            if not _SAFE_NAME.match(job.name):
                raise BackendError(f"site {self.site.name}: job name {job.name!r} has "
                                   "characters HTCondor itemdata cannot carry")
        names = [job.name for job in jobs]
        manifest = self.spool / "manifests" / manifest_name(names)
        output_dir = self.spool / "output"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        manifest.write_text("".join(json.dumps(job.to_dict()) + "\n" for job in jobs),
                            encoding="utf-8")
        description = submit_description(self.site.name, self.site.options, jobs, manifest,
                                         output_dir, self._image(jobs))
        cluster = self._call("submit", self.schedd.submit, description, item_data(jobs))
        return {name: f"{cluster}.{proc}" for proc, name in enumerate(names)}

    def find(self, names: Sequence[str]) -> dict[str, str]:
        if not names:
            return {}
        batches = " || ".join(f"JobBatchName == {json.dumps(b)}" for b in _batch_candidates(names))
        constraint = f"CtaoflowSite == {json.dumps(self.site.name)} && ({batches})"
        projection = ["ClusterId", "ProcId", "CtaoflowJob"]
        wanted = set(names)
        found: dict[str, str] = {}
        for ads in (self._call("history", self.schedd.history, constraint, projection),
                    self._call("query", self.schedd.query, constraint, projection)):
            # the queue is read last: a job both removed-and-resubmitted keeps its live id
            found |= {ad["CtaoflowJob"]: _job_id(ad) for ad in ads
                      if ad.get("CtaoflowJob") in wanted}
        return found

    def _ads(self, job_ids: Sequence[str], projection: list[str]) -> dict[str, Mapping[str, Any]]:
        """The ads of these jobs: one queue query, one history query for those gone."""
        for job_id in job_ids:
            _check_id(self.site.name, job_id)
        wanted = set(job_ids)
        ads = {_job_id(ad): ad for ad in
               self._call("query", self.schedd.query, _jobs_constraint(wanted), projection)}
        gone = wanted - ads.keys()
        if gone:  # match: the schedd stops reading its history once all are found
            history = self._call("history", self.schedd.history, _jobs_constraint(gone),
                                 projection, len(gone))
            ads |= {job_id: ad for ad in history
                    if (job_id := _job_id(ad)) in gone and job_id not in ads}
        return ads

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        ads = self._ads(job_ids, PROJECTION)
        lost = JobStatus(JobState.LOST, reason="not in the schedd's queue or history")
        return {job_id: job_status(ads[job_id]) if job_id in ads else lost
                for job_id in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        for job_id in job_ids:
            _check_id(self.site.name, job_id)
        self._call("remove", self.schedd.remove, list(job_ids), "cancelled by ctaoflow")

    def log(self, job_id: str, tail_bytes: int = 20000) -> str:
        ad = self._ads([job_id], ["ClusterId", "ProcId", "Out", "Err"]).get(job_id)
        if ad is None:
            return ""
        text = "".join(_tail(Path(str(ad[key])), tail_bytes)
                       for key in ("Out", "Err") if ad.get(key))
        return text[-tail_bytes:]


def _tail(path: Path, tail_bytes: int) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - tail_bytes))
        return handle.read().decode(errors="replace")
