"""A broken ledger is one line naming the file and the fix, and loses nothing."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Iterator

import pytest

from ctaoflow import cli
from ctaoflow.settings import CONFIG_DIR

DEMO = str(CONFIG_DIR / "productions" / "demo.yaml")


def ctaoflow(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of ``ctaoflow ARGV``."""
    with pytest.raises(SystemExit) as stop:
        cli.main(list(argv))
    return stop.value.code, capsys.readouterr().err


def one_line(err: str, ledger: Path, *words: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(ledger) in err and all(w in err for w in words), err


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only: skipped where mounting is not allowed)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _ledger_with_rows(home: Path, capsys: pytest.CaptureFixture) -> Path:
    assert ctaoflow(capsys, "status", DEMO)[0] == 0  # creates the ledger
    from ctaoflow.engine.context import Context  # records the production
    from ctaoflow.engine.ledger import session_factory
    from ctaoflow.spec.validation import load_production
    Context(load_production(DEMO), None, {}, None,  # type: ignore[arg-type]
            session_factory(), home).sync()
    return home / "ledger.db"


def test_garbage_ledger(home: Path, capsys: pytest.CaptureFixture) -> None:
    home.mkdir(parents=True)
    (home / "ledger.db").write_bytes(b"not a database at all\n" * 500)
    code, err = ctaoflow(capsys, "status", DEMO)
    assert code == 1
    one_line(err, home / "ledger.db", "not a SQLite ledger", "move it aside")


def test_a_folder_where_the_ledger_belongs(home: Path, capsys: pytest.CaptureFixture) -> None:
    (home / "ledger.db").mkdir(parents=True)
    code, err = ctaoflow(capsys, "report", DEMO)
    assert code == 1
    one_line(err, home / "ledger.db", "folder", "move it aside")


def test_locked_past_the_timeout(home: Path, capsys: pytest.CaptureFixture,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTAOFLOW_LEDGER_TIMEOUT", "0.2")
    ledger = _ledger_with_rows(home, capsys)
    holder = sqlite3.connect(ledger, isolation_level=None)  # a long write elsewhere
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE productions SET status = 'Active'")
    try:
        code, err = ctaoflow(capsys, "stop", DEMO)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 1
    one_line(err, ledger, "locked", "0.2 s", "fuser")


def test_read_only_ledger(home: Path, tmpfs: Path, capsys: pytest.CaptureFixture,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmpfs / "ledger.db"
    ledger.write_bytes(_ledger_with_rows(home, capsys).read_bytes())
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    monkeypatch.setenv("CTAOFLOW_HOME", str(tmpfs))
    for command in ("status", "stop"):
        code, err = ctaoflow(capsys, command, DEMO)
        assert code == 1
        one_line(err, ledger, "read-only", "writable")


def test_disk_full_writes_nothing(tmpfs: Path, capsys: pytest.CaptureFixture,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTAOFLOW_HOME", str(tmpfs))
    ledger = _ledger_with_rows(tmpfs, capsys)
    before = sqlite3.connect(ledger).execute("SELECT status FROM transformations").fetchall()
    filler = tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    with pytest.raises(OSError):
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)
    code, err = ctaoflow(capsys, "stop", DEMO)
    assert code == 1
    one_line(err, ledger, "disk is full", "free space")
    filler.unlink()
    check = sqlite3.connect(ledger)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert check.execute("SELECT status FROM transformations").fetchall() == before


def test_a_task_fails_with_the_line_not_the_database_traceback(home: Path) -> None:
    from ctaoflow.engine.ledger import LedgerError
    from operators.production import PrepareTransformationOperator

    home.mkdir(parents=True)
    (home / "ledger.db").write_bytes(b"\x00garbage" * 1000)
    operator = PrepareTransformationOperator(task_id="prepare", spec_path=DEMO,
                                             transformation="process_gamma")
    with pytest.raises(LedgerError, match="not a SQLite ledger") as raised:
        operator.execute({})
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert not [f for f in frames if "sqlalchemy" in f.filename or "/engine/" in f.filename]
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize("hostile", ["fifo", "wrong schema", "damaged JSON"])
def test_other_hostile_ledgers(home: Path, capsys: pytest.CaptureFixture, hostile: str) -> None:
    """Nothing blocks on a FIFO; a foreign schema or a damaged value names the ledger."""
    home.mkdir(parents=True)
    ledger = home / "ledger.db"
    if hostile == "fifo":
        os.mkfifo(ledger)
        words = ["special file", "move it aside"]
    elif hostile == "wrong schema":
        sqlite3.connect(ledger).executescript("CREATE TABLE productions (x); "
                                              "CREATE TABLE transformations (y);")
        words = ["not a ledger of this ctaoflow version", "no such"]
    else:
        _ledger_with_rows(home, capsys)
        with sqlite3.connect(ledger) as db:
            db.execute("INSERT INTO files (transformation_id, lfn, size, storages, meta, status,"
                       " error_count) VALUES (1, 'x', 0, '[]', '{damaged', 'Problematic', 0)")
        words = ["not JSON", "'{damaged'", "restore the ledger"]
    code, err = ctaoflow(capsys, "reset", DEMO)
    assert code == 1
    one_line(err, ledger, *words)


@pytest.mark.parametrize(("mode", "words"), [(0o000, ["unreadable", "chmod u+rw"]),
                                             (0o444, ["read-only", "writable"])])
def test_file_permissions_as_an_ordinary_user(home: Path, capsys: pytest.CaptureFixture,
                                              mode: int, words: list[str]) -> None:
    """chmod as it hits a user: root runs the CLI without its permission-bypass capabilities."""
    ledger = _ledger_with_rows(home, capsys)
    ledger.chmod(mode)
    bare = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
    if bare and shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to drop root's permission bypass")
    run = subprocess.run([*bare, sys.executable, "-m", "ctaoflow.cli", "stop", DEMO],
                         capture_output=True, text=True, check=False,
                         cwd=Path(__file__).parents[1])
    assert run.returncode == 1
    one_line(run.stderr, ledger, *words)


def test_a_home_that_is_not_a_folder(home: Path, capsys: pytest.CaptureFixture) -> None:
    home.write_text("not a folder")
    code, err = ctaoflow(capsys, "status", DEMO)
    assert code == 1
    one_line(err, home, "CTAOFLOW_HOME", "a file stands there", "a folder this user can write")


@pytest.mark.parametrize("url", ["nonsense://u:secret@host/x", "postgresql+nodriver://u:secret@h/x",
                                 "u:secret@host"])
def test_a_ledger_url_that_cannot_be_used(url: str) -> None:
    from ctaoflow.engine.ledger import LedgerError, engine_for

    with pytest.raises(LedgerError, match="ctaoflow_ledger connection") as raised:
        engine_for(url)
    assert "secret" not in str(raised.value) and "\n" not in str(raised.value)
