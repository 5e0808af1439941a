"""HTCondorBackend against recorded schedd answers (no pool can run here).

The fake schedd below serves the ClassAds of tests/data/htcondor/ (parsed with
``classad2``) and evaluates the backend's real constraint strings with
``classad2.ExprTree.eval``; submit descriptions are parsed back by ``htcondor2.Submit``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import classad2
import htcondor2
import pytest

from ctaoflow.backends import make_backend
from ctaoflow.backends.base import BackendError, JobSpec, JobState, JobStatus, SiteConfig
from ctaoflow.backends.htcondor import (
    HTCondorBackend,
    batch_name,
    item_data,
    job_status,
    submit_description,
)

DATA = Path(__file__).parent / "data" / "htcondor"
HOSTILE = ("it's", 'say "hi"', "$(rm -rf /)", "`id`", "a\nb", "x;y|z", "$HOME", "'' \"\"")


def read_ads(name: str) -> list[classad2.ClassAd]:
    return list(classad2.parseAds((DATA / name).read_text()))


class RecordedSchedd:
    """A schedd answering from recorded ClassAds; constraints evaluated by classad2."""

    def __init__(self, queue: list[classad2.ClassAd], history: list[classad2.ClassAd]) -> None:
        self.queue, self.history_ads = queue, history
        self.calls: list[tuple[str, Any]] = []
        self.next_cluster = 5000

    @staticmethod
    def _select(ads: list[classad2.ClassAd], constraint: str,
                projection: list[str]) -> list[dict[str, Any]]:
        expr = classad2.ExprTree(constraint)
        return [{k: ad[k] for k in projection if k in ad} for ad in ads if expr.eval(ad) is True]

    def submit(self, description: Mapping[str, str], items: list[dict[str, str]]) -> int:
        self.calls.append(("submit", (dict(description), items)))
        self.next_cluster += 1
        return self.next_cluster

    def query(self, constraint: str, projection: list[str]) -> list[dict[str, Any]]:
        self.calls.append(("query", constraint))
        return self._select(self.queue, constraint, projection)

    def history(self, constraint: str, projection: list[str],
                match: int = -1) -> list[dict[str, Any]]:
        self.calls.append(("history", constraint))
        found = self._select(self.history_ads, constraint, projection)
        return found if match < 0 else found[:match]

    def remove(self, job_ids: list[str], reason: str) -> None:
        self.calls.append(("remove", (job_ids, reason)))


@pytest.fixture
def schedd() -> RecordedSchedd:
    return RecordedSchedd(read_ads("queue.ads"), read_ads("history.ads"))


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return SiteConfig(name="CC-IN2P3", backend="htcondor", slots=500,
                      options={"spool_dir": str(tmp_path / "spool"),
                               "python": "/opt/py/bin/python3"})


def backend(site: SiteConfig, schedd: RecordedSchedd) -> HTCondorBackend:
    made = make_backend(site, {"schedd": schedd})
    assert isinstance(made, HTCondorBackend)
    return made


def jobs(n: int = 3, **kw: Any) -> list[JobSpec]:
    return [JobSpec(name=f"prod5b.proc.{i}.0", command=("ctapipe-process", f"--input=f{i}.simtel"),
                    workdir=f"/work/{i}", cores=1 + i % 2, memory_mb=2000 + i, walltime_s=600 + i,
                    **kw) for i in range(n)]


def render(description: Mapping[str, str], items: list[dict[str, str]]) -> htcondor2.Submit:
    """The submit file htcondor2's Schedd.submit sends, parsed back by htcondor2.Submit."""
    text = "".join(f"{k} = {v}\n" for k, v in description.items())
    lines = "\n".join("\x1f".join(item.values()) for item in items)
    return htcondor2.Submit(f"{text}queue {','.join(items[0])} from (\n{lines}\n)\n")


def test_submit_is_one_call_with_one_item_per_job(site: SiteConfig, schedd: RecordedSchedd) -> None:
    ids = backend(site, schedd).submit(jobs(3))
    assert ids == {"prod5b.proc.0.0": "5001.0", "prod5b.proc.1.0": "5001.1",
                   "prod5b.proc.2.0": "5001.2"}
    [(call, (description, items))] = schedd.calls
    assert call == "submit"
    assert [item["ctaoflow_job"] for item in items] == list(ids)
    assert [item["ctaoflow_index"] for item in items] == ["0", "1", "2"]
    assert items[1] | {} == {"ctaoflow_index": "1", "ctaoflow_job": "prod5b.proc.1.0",
                             "ctaoflow_cpus": "2", "ctaoflow_memory": "2001",
                             "ctaoflow_walltime": "601"}
    submit = render(description, items)
    assert list(submit.itemdata()) == items
    assert submit["batch_name"] == "prod5b.proc"
    assert submit["executable"] == "/opt/py/bin/python3"
    assert submit["request_cpus"] == "$(ctaoflow_cpus)"
    assert submit["request_memory"] == "$(ctaoflow_memory)"
    assert submit["allowed_execute_duration"] == "$(ctaoflow_walltime)"
    assert submit["MY.MaxRuntime"] == "$(ctaoflow_walltime)"
    assert submit["MY.CtaoflowSite"] == '"CC-IN2P3"'
    assert submit["output"].endswith("/output/$(ctaoflow_job).out")
    assert submit["error"].endswith("/output/$(ctaoflow_job).err")
    assert submit["log"].endswith("/output/$(ctaoflow_job).log")
    assert submit["universe"] == "vanilla" and "container_image" not in submit


def test_arguments_point_at_manifest_and_hostile_arguments_stay_in_it(
        site: SiteConfig, schedd: RecordedSchedd) -> None:
    job = JobSpec(name="prod5b.proc.7.0", command=("echo", *HOSTILE), workdir="/w",
                  env={"A": "$(B)"})
    backend(site, schedd).submit([job])
    description, items = schedd.calls[0][1]
    args = render(description, items)["arguments"]
    # HTCondor's new syntax: a double-quoted string of single-quoted words
    assert args.startswith('"') and args.endswith(' $(ctaoflow_index)"')
    manifest = Path(shlex.split(args[1:-1])[2])
    assert all(text not in json.dumps(description) for text in HOSTILE[2:4])
    [entry] = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert entry == job.to_dict() and tuple(entry["command"][1:]) == HOSTILE


def test_manifest_runs_through_the_runner(site: SiteConfig, schedd: RecordedSchedd,
                                          tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    job = JobSpec(name="prod5b.proc.1.0", workdir=str(tmp_path / "w"),
                  command=(sys.executable, "-c",
                           f"import sys; open({str(out)!r}, 'w').write(repr(sys.argv[1:]))",
                           *HOSTILE))
    backend(site, schedd).submit([jobs(1)[0], job])
    description, items = schedd.calls[0][1]
    manifest = shlex.split(description["arguments"][1:-1])[2]
    subprocess.run([sys.executable, "-m", "ctaoflow.runner", manifest,
                    items[1]["ctaoflow_index"]], check=True)
    assert out.read_text() == repr(list(HOSTILE))


def test_container_images(site: SiteConfig) -> None:
    chunk = jobs(2, image="docker://harbor.cta-observatory.org/ctapipe:0.28")
    plain = submit_description("S", {}, chunk, Path("/m"), Path("/o"), chunk[0].image)
    assert plain["universe"] == "container"
    assert plain["container_image"] == "docker://harbor.cta-observatory.org/ctapipe:0.28"
    apptainer = submit_description("S", {"container_style": "singularity"}, chunk, Path("/m"),
                                   Path("/o"), "/cvmfs/singularity.opensciencegrid.org/ctao/x:1")
    assert apptainer["MY.SingularityImage"] == '"/cvmfs/singularity.opensciencegrid.org/ctao/x:1"'
    assert apptainer["universe"] == "vanilla"


def test_chunk_with_two_images_is_refused(site: SiteConfig, schedd: RecordedSchedd) -> None:
    chunk = [*jobs(1, image="a:1"), *jobs(2, image="b:1")[1:]]
    with pytest.raises(BackendError, match="^site CC-IN2P3: a chunk must use one image"):
        backend(site, schedd).submit(chunk)


def test_transfer_manifest_ships_it(tmp_path: Path) -> None:
    described = submit_description("S", {"transfer_manifest": True}, jobs(1),
                                   tmp_path / "m.jsonl", tmp_path, None)
    assert described["transfer_input_files"] == str(tmp_path / "m.jsonl")
    assert "'m.jsonl'" in described["arguments"]


def test_unsafe_job_name_is_refused(site: SiteConfig, schedd: RecordedSchedd) -> None:
    job = JobSpec(name='bad "name"', command=("true",), workdir="/w")
    with pytest.raises(BackendError, match="^site CC-IN2P3: job name"):
        backend(site, schedd).submit([job])


def test_batch_name() -> None:
    assert batch_name(["p.t.1.0", "p.t.2.0"]) == "p.t"
    assert batch_name(["p.t.1.0"]) == "p.t.1.0"
    assert batch_name(["a.x", "b.x"]) == "ctaoflow"


EXPECTED = {
    "4211.0": JobStatus(JobState.PENDING),
    "4211.1": JobStatus(JobState.RUNNING),
    "4211.2": JobState.TIMEOUT,
    "4211.3": JobState.OUT_OF_MEMORY,
    "4211.4": JobState.FAILED,
    "4211.5": JobState.TIMEOUT,
    "4211.6": JobStatus(JobState.RUNNING, reason="transferring output"),
    "4211.7": JobStatus(JobState.RUNNING, reason="suspended"),
    "4211.8": JobState.PENDING,
    "4211.9": JobStatus(JobState.DONE, 0),
    "4211.10": JobStatus(JobState.FAILED, 3),
    "4211.11": JobStatus(JobState.FAILED, 137, "killed by signal 9"),
    "4211.12": JobStatus(JobState.CANCELLED, reason="cancelled by ctaoflow"),
    "4211.13": JobState.TIMEOUT,
    "4210.0": JobStatus(JobState.DONE, 0),
    "4211.99": JobState.LOST,
}


def test_poll_maps_recorded_answers_in_two_queries(site: SiteConfig,
                                                   schedd: RecordedSchedd) -> None:
    result = backend(site, schedd).poll(list(EXPECTED))
    assert list(result) == list(EXPECTED)
    for job_id, expected in EXPECTED.items():
        got = result[job_id]
        assert (got if isinstance(expected, JobStatus) else got.state) == expected, job_id
    assert "code 47" in result["4211.2"].reason and "execute duration" in result["4211.2"].reason
    assert "memory limit" in result["4211.3"].reason
    assert [call for call, _ in schedd.calls] == ["query", "history"]
    assert schedd.calls[0][1] == ("(ClusterId == 4210 && member(ProcId, {0})) || (ClusterId == "
                                  "4211 && member(ProcId, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, "
                                  "12, 13, 99}))")
    assert schedd.calls[1][1] == ("(ClusterId == 4210 && member(ProcId, {0})) || (ClusterId == "
                                  "4211 && member(ProcId, {9, 10, 11, 12, 13, 99}))")


def test_poll_of_queued_jobs_needs_no_history(site: SiteConfig, schedd: RecordedSchedd) -> None:
    assert backend(site, schedd).poll(["4212.0"])["4212.0"].state is JobState.RUNNING
    assert [call for call, _ in schedd.calls] == ["query"]


def test_poll_refuses_foreign_ids(site: SiteConfig, schedd: RecordedSchedd) -> None:
    with pytest.raises(BackendError, match="^site CC-IN2P3: 'x; rm' is not an HTCondor job id"):
        backend(site, schedd).poll(["x; rm"])


def test_unknown_status_is_lost() -> None:
    assert job_status(classad2.ClassAd({"JobStatus": 9})).state is JobState.LOST


def test_find_reconnects_by_batch_name(site: SiteConfig, schedd: RecordedSchedd) -> None:
    wanted = ["prod5b.proc.1.0", "prod5b.proc.10.0", "prod5b.proc.12.0", "prod5b.proc.77.0"]
    found = backend(site, schedd).find(wanted)
    # prod5b.proc.1.0 at DESY (cluster 4213) belongs to another site and is not returned
    assert found == {"prod5b.proc.1.0": "4211.0", "prod5b.proc.10.0": "4211.9",
                     "prod5b.proc.12.0": "4211.11"}
    constraints = [c for _, c in schedd.calls]
    assert all('JobBatchName == "prod5b.proc"' in c for c in constraints)
    assert all('CtaoflowSite == "CC-IN2P3"' in c for c in constraints)


def test_find_after_submit_with_a_new_backend(site: SiteConfig, schedd: RecordedSchedd) -> None:
    """A restarted triggerer: the ids come back from the schedd, not from memory."""
    chunk = jobs(2)
    ids = backend(site, schedd).submit(chunk)
    description, items = schedd.calls[0][1]
    for item, job_id in zip(items, ids.values(), strict=True):
        cluster, proc = map(int, job_id.split("."))
        schedd.queue.append(classad2.ClassAd({
            "ClusterId": cluster, "ProcId": proc, "JobStatus": 1,
            "JobBatchName": description["batch_name"], "CtaoflowJob": item["ctaoflow_job"],
            "CtaoflowSite": json.loads(description["MY.CtaoflowSite"])}))
    assert backend(site, schedd).find([job.name for job in chunk]) == ids


def test_cancel_removes_in_one_action(site: SiteConfig, schedd: RecordedSchedd) -> None:
    backend(site, schedd).cancel(["4211.0", "4211.1"])
    assert schedd.calls == [("remove", (["4211.0", "4211.1"], "cancelled by ctaoflow"))]


def test_log_reads_output_and_error(site: SiteConfig, schedd: RecordedSchedd,
                                    tmp_path: Path) -> None:
    (tmp_path / "o").write_text("stdout line\n")
    (tmp_path / "e").write_text("stderr line\n")
    ad = schedd.history_ads[-1]
    ad["Out"], ad["Err"] = str(tmp_path / "o"), str(tmp_path / "e")
    made = backend(site, schedd)
    assert made.log("4210.0") == "stdout line\nstderr line\n"
    assert made.log("4210.0", tail_bytes=5) == "line\n"
    assert made.log("4211.99") == ""


def test_schedd_errors_become_one_line_backend_errors(site: SiteConfig) -> None:
    class Broken(RecordedSchedd):
        def query(self, constraint: str, projection: list[str]) -> list[dict[str, Any]]:
            raise htcondor2.HTCondorException("Failed to connect to schedd\nat host")

    with pytest.raises(BackendError) as info:
        backend(site, Broken([], [])).poll(["1.0"])
    assert str(info.value) == "site CC-IN2P3: query failed: Failed to connect to schedd at host"


def test_item_data_order_matches_manifest() -> None:
    assert [item["ctaoflow_index"] for item in item_data(jobs(12))] == [str(i) for i in range(12)]
