"""Text summaries of a production: files, tasks and jobs by status."""

from __future__ import annotations

FILE_COLUMNS = ("Unused", "Assigned", "Processed", "Problematic", "MaxReset")
JOB_COLUMNS = ("Submitted", "Done", "Failed", "Killed")


def summary_table(summary: dict[str, dict[str, dict[str, int]]]) -> str:
    """One row per transformation: status, files by status, jobs by status."""
    header = (f"{'transformation':<28} {'status':<10} "
              + " ".join(f"{c:>9}" for c in FILE_COLUMNS) + " | jobs "
              + " ".join(f"{c:>9}" for c in JOB_COLUMNS))
    lines = [header, "-" * len(header)]
    for name, counts in summary.items():
        status = next(iter(counts.get("status", {})), "-")
        files = " ".join(f"{counts['files'].get(c, 0):>9}" for c in FILE_COLUMNS)
        jobs = " ".join(f"{counts['jobs'].get(c, 0):>9}" for c in JOB_COLUMNS)
        lines.append(f"{name:<28} {status:<10} {files} |      {jobs}")
    return "\n".join(lines)
