"""Store hardening (issue 13, carried over to the segmented store of issue 15): a write never
writes over a damaged file (store file or segment) nor rotates one into `.bak`, the schema
is read from the top-level meta table, typed documents are checked on read, a symlinked
store is written through, lock waits time out (exit 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ctui.errors import BadRunError, ExitCode, StoreCorruptError
from ctui.store import SCHEMA_VERSION, Store, dump_store, parse_store_bytes
from ctui.store_segments import Segments
from tests.jobs_helpers import wait_for
from tests.store_helpers import segment_file

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


# -- item 3: damage is never written over ----------------------------------------------------


def test_a_store_damaged_in_another_runs_line_is_never_written_nor_rotated(root: Path) -> None:
    store = store_of(root)
    store.update_run("run1", {"status": "failed"})
    seg = segment_file(store, "run2")
    raw = seg.read_bytes()
    damaged = raw.replace(b'"run2":{"id":"run2"', b'"run2":{"id":run2"')
    assert damaged != raw
    seg.write_bytes(damaged)  # another program damages run2's line
    backup = seg.with_name(seg.name + ".bak")
    good_backup = backup.read_bytes()
    attempts = [
        lambda: store.update_run("run1", {"status": "lost"}),  # another run of that segment
        lambda: store.update_run("run0", mutate=lambda d: d.update(note="y")),
        lambda: store.insert_run({"id": "run9", "status": "queued"}),
        lambda: store.transact(lambda data: data["runs"].get("run1")),
        lambda: store.remove_runs(["run0"]),
    ]
    for attempt in attempts:
        with pytest.raises(StoreCorruptError, match="unreadable"):
            attempt()
        assert seg.read_bytes() == damaged
        assert backup.read_bytes() == good_backup
    store.put_doc("triggers", "t", {"name": "t"})  # the store file's tables are not held up
    assert seg.read_bytes() == damaged
    parse_store_bytes(backup, backup.read_bytes(), segment=True)  # `doctor --restore` has it
    proc = ctui(root, "tag", "run1", "x")
    one_line_error(proc, ExitCode.BAD_INPUT, "unreadable", str(seg))
    assert seg.read_bytes() == damaged
    doctor = ctui(root, "doctor")
    assert doctor.returncode == ExitCode.FAILED and seg.name in doctor.stdout
    restored = ctui(root, "doctor", "--restore")
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout and "ctui.segments/0.json" in restored.stdout
    assert store.get_run("run0")["note"] == "x"  # the copy before the last write
    assert store.get_run("run2")["id"] == "run2"
    assert store.get_doc("triggers", "t") == {"name": "t"}


def test_a_damaged_store_file_is_never_written_nor_rotated(root: Path) -> None:
    store = store_of(root)
    store.put_doc("triggers", "t", {"name": "t"})
    raw = store.path.read_bytes()
    damaged = raw.replace(b'"t":{"name"', b'"t":{name"')
    store.path.write_bytes(damaged)
    backup = store.path.with_name("ctui.json.bak")
    good_backup = backup.read_bytes()
    for attempt in (
        lambda: store.update_run("run1", {"status": "lost"}),
        lambda: store.insert_run({"id": "run9"}),
        lambda: store.put_doc("triggers", "u", {}),
        lambda: store.transact(lambda data: None),
    ):
        with pytest.raises(StoreCorruptError, match="unreadable"):
            attempt()
        assert store.path.read_bytes() == damaged
        assert backup.read_bytes() == good_backup
    restored = ctui(root, "doctor", "--restore")
    assert restored.returncode == 0 and "restored" in restored.stdout, restored.stderr
    assert store.get_run("run1")["status"] == "succeeded"


def test_same_size_damage_in_place_is_caught_too(root: Path) -> None:
    store = store_of(root)
    store.update_run("run1", {"status": "failed"})
    seg = segment_file(store, "run2")
    st = seg.stat()
    raw = seg.read_bytes()
    damaged = raw.replace(b'"run2":{"id":"run2"', b'"run2":{"id":"run2\x00')
    assert len(damaged) == len(raw)
    with open(seg, "r+b") as fh:  # in place: same inode, same size
        fh.write(damaged)
    os.utime(seg, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    with pytest.raises(StoreCorruptError):
        store.update_run("run1", {"status": "lost"})
    assert seg.read_bytes() == damaged


def test_the_backup_is_always_a_copy_that_parses(root: Path) -> None:
    store = store_of(root)
    backup = store.path.with_name("ctui.json.bak")
    seg = segment_file(store, "run1")
    for i in range(5):
        store.update_run("run1", {"n": i})
        store.insert_run({"id": f"new{i}", "status": "queued"})
        store.transact(lambda data: data["runs"]["run2"].update(m=1))
        parse_store_bytes(backup, backup.read_bytes())
        bak = seg.with_name(seg.name + ".bak")
        parse_store_bytes(bak, bak.read_bytes(), segment=True)


def test_a_run_param_named_schema_does_not_fool_the_schema_check(root: Path) -> None:
    store = store_of(root)
    store.update_run("run1", {"params": {"schema": SCHEMA_VERSION + 1}})
    data = orjson.loads(store.path.read_bytes())
    data["meta"]["store"]["schema"] = SCHEMA_VERSION + 1  # a newer ctui's file
    newer = dump_store(data)
    store.path.write_bytes(newer)
    with pytest.raises(Exception, match="knows up to"):
        store.update_run("run1", {"status": "lost"})
    assert store.path.read_bytes() == newer
    proc = ctui(root, "tag", "run1", "x")
    one_line_error(proc, ExitCode.BAD_INPUT, f"schema version {SCHEMA_VERSION + 1}")
    assert store.path.read_bytes() == newer


def test_a_one_run_write_reads_and_writes_only_its_segment(root: Path, monkeypatch) -> None:
    monkeypatch.setenv("CTUI_SEGMENT_RUNS", "4")
    store = store_of(root)
    store.put_runs({"id": f"x{i:03d}", "status": "succeeded"} for i in range(40))
    assert len(store.segments.names()) >= 10
    read, written = [], []
    real_read, real_write = Segments.read_raw, Segments.write
    monkeypatch.setattr(Segments, "read_raw", lambda s, lo: read.append(lo) or real_read(s, lo))
    monkeypatch.setattr(
        Segments, "write", lambda s, lo, d, seen: written.append(lo) or real_write(s, lo, d, seen)
    )
    store.update_run("x017", {"status": "lost"})
    assert len(set(read)) == 1 and written == read[:1]
    read.clear(), written.clear()
    assert store.get_run(store.resolve("x033"))["id"] == "x033"
    assert len(set(read)) == 1  # the indexes are fresh: only the run's own segment is read
    assert store.get_run("x017")["status"] == "lost"


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
    seg = segment_file(store, "run1")
    data = orjson.loads(seg.read_bytes())
    data["runs"]["run1"]["tags"] = "str"
    seg.write_bytes(dump_store(data))
    raw = seg.read_bytes()

    listed = ctui(root, "runs", "--json")
    one_line_error(listed, ExitCode.BAD_INPUT, "run1", "'tags'", "a list of strings")
    assert [r["id"] for r in orjson.loads(listed.stdout)] == ["run2", "run0"]
    table = ctui(root, "runs")
    one_line_error(table, ExitCode.BAD_INPUT, "run1")
    assert "run0" in table.stdout and "run2" in table.stdout

    one_line_error(ctui(root, "show", "run1"), ExitCode.BAD_INPUT, "run1", "'tags'")
    one_line_error(ctui(root, "tag", "run1", "x"), ExitCode.BAD_INPUT, "'tags'")
    one_line_error(ctui(root, "note", "run1", "x"), ExitCode.BAD_INPUT, "'tags'")
    assert seg.read_bytes() == raw  # nothing rewritten over it

    assert ctui(root, "show", "run2").returncode == 0
    assert ctui(root, "tag", "run2", "b").returncode == 0
    assert store.get_run("run2")["tags"] == ["a", "b"]
    assert orjson.loads(seg.read_bytes())["runs"]["run1"]["tags"] == "str"

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
    assert "run1" not in orjson.loads(seg.read_bytes())["runs"]
    assert ctui(root, "doctor").returncode == 0


# -- item 8: a symlinked store ---------------------------------------------------------------


def test_a_symlinked_store_is_written_through_to_its_target(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "disk2"
    elsewhere.mkdir()
    link = root / ".ctui" / "ctui.json"
    target = elsewhere / "shared.json"
    os.replace(link, target)
    os.replace(root / ".ctui" / "ctui.segments", elsewhere / "shared.segments")  # beside it
    link.symlink_to(target)
    for args in (["tag", "run1", "t1"], ["note", "run2", "hello"], ["tag", "run1", "t2"]):
        proc = ctui(root, *args)
        assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and link.resolve() == target
    seg = elsewhere / "shared.segments" / "0.json"
    data = orjson.loads(seg.read_bytes())
    assert data["runs"]["run1"]["tags"] == ["a", "t1", "t2"]
    assert data["runs"]["run2"]["note"] == "hello"
    backup = seg.with_name("0.json.bak")  # the last good copy sits by the target
    assert orjson.loads(backup.read_bytes())["runs"]["run1"]["tags"] == ["a", "t1"]
    assert not (root / ".ctui" / "ctui.segments").exists()
    doctor = ctui(root, "doctor")
    assert doctor.returncode == 0, doctor.stdout
    assert "shared.segments/" in doctor.stdout


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
