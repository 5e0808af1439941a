"""Run one job of a manifest: ``python -m ctaoflow.runner MANIFEST INDEX``.

A manifest is a JSON-lines file of ``JobSpec.to_dict()`` records, one per array
element. The runner changes to the job's working directory and replaces itself with
the job's command: arguments reach the program as a vector, never through a shell.
"""

from __future__ import annotations

import json
import os
import sys


def read_entry(manifest: str, index: int) -> dict:
    with open(manifest, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number == index:
                return json.loads(line)
    raise SystemExit(f"{manifest}: no job at index {index}")


def main(argv: list[str] | None = None) -> None:
    manifest, index = (argv or sys.argv[1:])[:2]
    job = read_entry(manifest, int(index))
    os.makedirs(job["workdir"], exist_ok=True)
    os.chdir(job["workdir"])
    env = {**os.environ, **job.get("env", {})}
    try:
        os.execvpe(job["command"][0], job["command"], env)
    except OSError as exc:  # command not found / not executable: exit like a shell would
        print(f"ctaoflow runner: cannot run {job['command'][0]!r}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(127) from None


if __name__ == "__main__":
    main()
