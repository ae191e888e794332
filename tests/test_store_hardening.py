"""Store hardening (issue 13): the quick-write path never writes over a damaged store nor
rotates one into `.bak`, the schema is read from the top-level meta table, typed documents
are checked on read, a symlinked store is written through, lock waits time out (exit 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ctui.errors import BadRunError, ExitCode, StoreCorruptError
from ctui.store import SCHEMA_VERSION, Store, _RunLines, dump_store, parse_store_bytes
from tests.jobs_helpers import wait_for

pytestmark = pytest.mark.timeout(120)


def ctui(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("CTUI_STORE", "CTUI_LOCK_TIMEOUT")}
    full.update(COLUMNS="120", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "ctui", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full,
        timeout=90,
    )


def one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The process failed with `code`, said `error: …` (and at most a hint), no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert all(ln.startswith(("error: ", "  hint: ", "warning: ")) for ln in lines), proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / ".ctui").mkdir()
    store = Store(tmp_path / ".ctui" / "ctui.json")
    store.initialise()
    store.put_runs(
        {"id": f"run{i}", "job": "train", "status": "succeeded", "tags": ["a"]} for i in range(3)
    )
    store.update_run("run0", {"note": "x"})  # a .bak that parses
    return tmp_path


def store_of(root: Path) -> Store:
    return Store(root / ".ctui" / "ctui.json")


# -- item 3: the quick one-line update path -------------------------------------------------


def test_a_store_damaged_in_another_runs_line_is_never_written_nor_rotated(root: Path) -> None:
    store = store_of(root)
    store.update_run("run1", {"status": "failed"})  # the stamp now vouches for this file
    raw = store.path.read_bytes()
    damaged = raw.replace(b'"run2":{"id":"run2"', b'"run2":{"id":run2"')
    assert damaged != raw
    store.path.write_bytes(damaged)  # another program damages run2's line
    backup = store.path.with_name("ctui.json.bak")
    good_backup = backup.read_bytes()
    attempts = [
        lambda: store.update_run("run1", {"status": "lost"}),  # the quick path's case
        lambda: store.update_run("run0", mutate=lambda d: d.update(note="y")),
        lambda: store.insert_run({"id": "run9", "status": "queued"}),
        lambda: store.put_doc("triggers", "t", {"name": "t"}),
        lambda: store.transact(lambda data: None),
        lambda: store.remove_runs(["run0"]),
    ]
    for attempt in attempts:
        with pytest.raises(StoreCorruptError, match="unreadable"):
            attempt()
        assert store.path.read_bytes() == damaged
        assert backup.read_bytes() == good_backup
    parse_store_bytes(backup, backup.read_bytes())  # `doctor --restore` has a good copy
    proc = ctui(root, "tag", "run1", "x")
    one_line_error(proc, ExitCode.BAD_INPUT, "unreadable", "ctui.json")
    assert store.path.read_bytes() == damaged
    restored = ctui(root, "doctor", "--restore")
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout
    assert store.get_run("run0")["note"] == "x"  # the copy before the last write
    assert store.get_run("run2")["id"] == "run2"


def test_same_size_damage_in_place_is_caught_too(root: Path) -> None:
    store = store_of(root)
    store.update_run("run1", {"status": "failed"})
    st = store.path.stat()
    raw = store.path.read_bytes()
    damaged = raw.replace(b'"run2":{"id":"run2"', b'"run2":{"id":"run2\x00')
    assert len(damaged) == len(raw)
    with open(store.path, "r+b") as fh:  # in place: same inode, same size
        fh.write(damaged)
    os.utime(store.path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    with pytest.raises(StoreCorruptError):
        store.update_run("run1", {"status": "lost"})
    assert store.path.read_bytes() == damaged


def test_the_backup_is_always_a_copy_that_parses(root: Path) -> None:
    store = store_of(root)
    backup = store.path.with_name("ctui.json.bak")
    for i in range(5):
        store.update_run("run1", {"n": i})
        store.insert_run({"id": f"new{i}", "status": "queued"})
        store.transact(lambda data: data["runs"]["run2"].update(m=1))
        parse_store_bytes(backup, backup.read_bytes())


def test_a_run_param_named_schema_does_not_fool_the_schema_check(root: Path) -> None:
    store = store_of(root)
    store.update_run("run1", {"params": {"schema": SCHEMA_VERSION}})
    data = orjson.loads(store.path.read_bytes())
    data["meta"]["store"]["schema"] = SCHEMA_VERSION + 1  # a newer ctui's file
    newer = dump_store(data)
    assert b'"schema":%d' % SCHEMA_VERSION in newer  # only in the run's params
    assert _RunLines.of(newer) is None  # the layout check reads the meta table itself
    store.path.write_bytes(newer)
    with pytest.raises(Exception, match="knows up to"):
        store.update_run("run1", {"status": "lost"})
    assert store.path.read_bytes() == newer
    proc = ctui(root, "tag", "run1", "x")
    one_line_error(proc, ExitCode.BAD_INPUT, f"schema version {SCHEMA_VERSION + 1}")
    assert store.path.read_bytes() == newer


def test_the_quick_path_is_taken_on_the_file_ctui_wrote(root: Path, monkeypatch) -> None:
    store = store_of(root)
    store.update_run("run1", {"status": "failed"})
    parsed = []
    real = parse_store_bytes
    monkeypatch.setattr("ctui.store.parse_store_bytes", lambda p, r: parsed.append(1) or real(p, r))
    store.update_run("run1", {"status": "lost"})
    store.insert_run({"id": "run7"})
    assert parsed == []  # neither parsed the other runs
    assert orjson.loads(store.path.read_bytes())["runs"]["run1"]["status"] == "lost"


# -- item 8: typed documents ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ({"meta": {"store": "x"}}, "meta['store'] is a string"),
        ({"meta": {"store": {"schema": 1}}, "runs": [1]}, "table 'runs' is a list"),
        ({"meta": {"store": {"schema": 1}}, "runs": {"r": 5}}, "runs['r'] is a number"),
        ({"meta": {"store": {"schema": True}}, "runs": {}}, "schema version True"),
    ],
)
def test_valid_json_with_wrong_inner_types_is_one_line_exit_2(
    root: Path, content: dict, needle: str
) -> None:
    path = root / ".ctui" / "ctui.json"
    raw = orjson.dumps(content)
    path.write_bytes(raw)
    for args in (
        ["runs"],
        ["runs", "--json"],
        ["tag", "r", "x"],
        ["show", "r"],
        ["note", "r", "n"],
    ):
        one_line_error(ctui(root, *args), ExitCode.BAD_INPUT, needle)
    doctor = ctui(root, "doctor")
    assert doctor.returncode == ExitCode.FAILED, doctor.stderr
    assert "Traceback" not in doctor.stderr and needle in doctor.stdout
    assert path.read_bytes() == raw


def test_a_run_with_a_wrongly_typed_field_is_named_and_the_rest_still_read(root: Path) -> None:
    store = store_of(root)
    data = orjson.loads(store.path.read_bytes())
    data["runs"]["run1"]["tags"] = "str"
    store.path.write_bytes(dump_store(data))
    raw = store.path.read_bytes()

    listed = ctui(root, "runs", "--json")
    one_line_error(listed, ExitCode.BAD_INPUT, "run1", "'tags'", "a list of strings")
    assert [r["id"] for r in orjson.loads(listed.stdout)] == ["run2", "run0"]
    table = ctui(root, "runs")
    one_line_error(table, ExitCode.BAD_INPUT, "run1")
    assert "run0" in table.stdout and "run2" in table.stdout

    one_line_error(ctui(root, "show", "run1"), ExitCode.BAD_INPUT, "run1", "'tags'")
    one_line_error(ctui(root, "tag", "run1", "x"), ExitCode.BAD_INPUT, "'tags'")
    one_line_error(ctui(root, "note", "run1", "x"), ExitCode.BAD_INPUT, "'tags'")
    assert store.path.read_bytes() == raw  # nothing rewritten over it

    assert ctui(root, "show", "run2").returncode == 0
    assert ctui(root, "tag", "run2", "b").returncode == 0
    assert store.get_run("run2")["tags"] == ["a", "b"]
    assert orjson.loads(store.path.read_bytes())["runs"]["run1"]["tags"] == "str"

    doctor = ctui(root, "doctor")
    assert doctor.returncode == ExitCode.FAILED
    assert "1 run(s) with wrongly typed fields" in doctor.stdout and "run1" in doctor.stdout
    assert "Traceback" not in doctor.stderr
    with pytest.raises(BadRunError):
        store.get_run("run1")
    assert store.get_run("run1", checked=False)["tags"] == "str"
    assert store.update_run("run1", {"status": "lost"}) is not None  # plain fields still set

    removed = ctui(root, "rm", "run1", "--yes")  # and the damaged run can be removed
    assert removed.returncode == 0, removed.stderr
    assert "run1" not in orjson.loads(store.path.read_bytes())["runs"]
    assert ctui(root, "doctor").returncode == 0


# -- item 8: a symlinked store ---------------------------------------------------------------


def test_a_symlinked_store_is_written_through_to_its_target(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "disk2"
    elsewhere.mkdir()
    link = root / ".ctui" / "ctui.json"
    target = elsewhere / "shared.json"
    os.replace(link, target)
    link.symlink_to(target)
    for args in (["tag", "run1", "t1"], ["note", "run2", "hello"], ["tag", "run1", "t2"]):
        proc = ctui(root, *args)
        assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and link.resolve() == target
    data = orjson.loads(target.read_bytes())
    assert data["runs"]["run1"]["tags"] == ["a", "t1", "t2"]
    assert data["runs"]["run2"]["note"] == "hello"
    backup = elsewhere / "shared.json.bak"  # the last good copy sits by the target
    assert orjson.loads(backup.read_bytes())["runs"]["run1"]["tags"] == ["a", "t1"]
    doctor = ctui(root, "doctor")
    assert doctor.returncode == 0, doctor.stdout
    assert "shared.json.bak" in doctor.stdout


# -- item 8: waiting for the lock times out --------------------------------------------------

HOLDER = (
    "import sys; from pathlib import Path; from ctui.atomic import file_lock\n"
    "with file_lock(Path(sys.argv[1])):\n"
    "    print('locked', flush=True); sys.stdin.read()\n"
)


@pytest.fixture
def holder(root: Path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store_of(root).lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def test_a_lock_held_too_long_is_exit_3_busy_naming_the_holder(root: Path, holder) -> None:
    raw = store_of(root).path.read_bytes()
    for args in (["tag", "run1", "x"], ["note", "run1", "x"]):
        proc = ctui(root, *args, env={"CTUI_LOCK_TIMEOUT": "0.5"})
        one_line_error(proc, ExitCode.BUSY, "is locked by", f"pid {holder.pid}", "python")
        assert "CTUI_LOCK_TIMEOUT" in proc.stderr
    assert store_of(root).path.read_bytes() == raw
    listed = ctui(root, "runs", env={"CTUI_LOCK_TIMEOUT": "0.5"})  # reading needs no lock
    assert listed.returncode == 0 and "run1" in listed.stdout
    bad = ctui(root, "tag", "run1", "x", env={"CTUI_LOCK_TIMEOUT": "soon"})
    one_line_error(bad, ExitCode.BAD_INPUT, "CTUI_LOCK_TIMEOUT='soon'")


def _waiters(lock: Path) -> int:
    ino = lock.stat().st_ino
    return sum(
        1
        for ln in Path("/proc/locks").read_text().splitlines()
        if " -> " in ln and f":{ino} " in ln
    )


def test_a_writer_waits_for_the_lock_and_goes_on_when_it_is_free(root: Path, holder) -> None:
    lock = store_of(root).lock_path
    waiting = subprocess.Popen(
        [sys.executable, "-m", "ctui", "tag", "run1", "late"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CTUI_LOCK_TIMEOUT": "60"},
    )
    wait_for(lambda: _waiters(lock) > 0 or waiting.poll() is not None, timeout=60)
    assert waiting.poll() is None  # it waits (a blocking flock, no polling)
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=10)
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert store_of(root).get_run("run1")["tags"] == ["a", "late"]
