"""The segmented store (issue 15): migration of a real one-file store, a crash mid-migration,
writers across segments, splits, the indexes (deleted, stale, damaged), the journal."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ctui.errors import ExitCode, StoreCorruptError
from ctui.ids import new_run_id
from ctui.store import Store, parse_store_bytes
from ctui.store_segments import Segments
from tests.jobs_helpers import wait_for
from tests.store_helpers import segment_file, stored_runs
from tests.test_store_hardening import ctui, one_line_error

pytestmark = pytest.mark.timeout(180)

GOLDEN = Path(__file__).parent / "golden" / "store_v1.json.gz"


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    """A project whose store is the one-file store the ctui of 61dd211 wrote (1,501 runs)."""
    (tmp_path / ".ctui").mkdir()
    path = tmp_path / ".ctui" / "ctui.json"
    path.write_bytes(gzip.decompress(GOLDEN.read_bytes()))
    return tmp_path


def project_store(
    tmp_path: Path,
    monkeypatch,
    per_segment: int,
    prefix: str,
    n: int,
    *,
    digits: int = 3,
    status: str = "succeeded",
) -> Store:
    """A project store of `n` runs `<prefix>000`, `<prefix>001`, … (`digits` wide) in
    segments of `per_segment` runs (the setting also reaches the ctui processes a test
    starts)."""
    monkeypatch.setenv("CTUI_SEGMENT_RUNS", str(per_segment))
    (tmp_path / ".ctui").mkdir(exist_ok=True)
    store = Store(tmp_path / ".ctui" / "ctui.json")
    store.initialise()
    store.put_runs({"id": f"{prefix}{i:0{digits}d}", "status": status} for i in range(n))
    return store


def test_a_one_file_store_reads_as_ever_then_migrates_on_the_first_write(v1: Path) -> None:
    path = v1 / ".ctui" / "ctui.json"
    original = path.read_bytes()
    old = orjson.loads(original)
    assert old["meta"]["store"]["schema"] == 1 and len(old["runs"]) == 1501
    first = sorted(old["runs"])[3]

    # Reading changes nothing: the runs, their numbers, a prefix.
    store = Store(path)
    assert [r["seq"] for r in store.runs()[-3:]] == [1499, 1500, 1501]
    assert store.resolve("#4") == first and store.get_run(first)["note"] == "the good one"
    shown = ctui(v1, "show", "#4", "--json")
    assert shown.returncode == 0 and orjson.loads(shown.stdout)["id"] == first, shown.stderr
    assert path.read_bytes() == original
    assert not (v1 / ".ctui" / "ctui.segments").exists()

    # The first write migrates: the old file is kept byte for byte, nothing is lost.
    listed = ctui(v1, "runs", "--json", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    assert [r["seq"] for r in orjson.loads(listed.stdout)] == [1501, 1500, 1499, 1498, 1497]
    tagged = ctui(v1, "tag", "#4", "migrated")
    assert tagged.returncode == 0, tagged.stderr
    assert (v1 / ".ctui" / "ctui.json.v1-backup").read_bytes() == original
    store = Store(path)
    main = orjson.loads(path.read_bytes())
    assert main["meta"]["store"]["schema"] == 2 and "runs" not in main
    assert main["meta"]["store"]["last_seq"] == 1501
    assert main["triggers"] == old["triggers"] and main["champions"] == old["champions"]
    assert len(store.segments.names()) == 2  # 1,501 runs: 1,000 + 501
    now = stored_runs(store)
    assert set(now) == set(old["runs"])
    last = store.resolve("#1501")
    for rid, doc in old["runs"].items():
        if rid not in (first, last):
            assert now[rid] == doc
    assert now[first]["tags"] == [*old["runs"][first]["tags"], "migrated"]
    assert now[first]["note"] == "the good one"
    doctor = ctui(v1, "doctor")
    assert doctor.returncode == 0, doctor.stdout
    assert "1501 runs in 2 segment(s)" in doctor.stdout

    # New runs go on numbering from the old store's last number.
    rid = new_run_id()
    store.insert_run({"id": rid, "job": "train", "status": "queued"})
    assert store.get_run(rid)["seq"] == 1502
    assert store.resolve("#1502") == rid and store.resolve("@last") == rid


MIGRATOR = """
import sys
from ctui.store import Store
print("go", flush=True)
Store(sys.argv[1]).put_doc("triggers", "t", {"name": "t"})
"""


def test_a_crash_mid_migration_loses_nothing_and_the_next_write_finishes_it(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CTUI_SEGMENT_RUNS", "10")  # 151 segment files: a long migration
    (tmp_path / ".ctui").mkdir()
    path = tmp_path / ".ctui" / "ctui.json"
    original = gzip.decompress(GOLDEN.read_bytes())
    path.write_bytes(original)
    segs = Segments(tmp_path / ".ctui" / "ctui.segments")
    env = {**os.environ, "CTUI_SEGMENT_RUNS": "10"}
    interrupted = 0
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", MIGRATOR, str(path)], stdout=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"go"
        wait_for(lambda p=proc: len(segs.names()) >= 3 or p.poll() is not None, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if Store(path).segmented(parse_store_bytes(path, path.read_bytes())):
            break  # it got to the end before the kill
        # Killed before the store file was switched: it is the old store, untouched.
        interrupted += 1
        assert path.read_bytes() == original
        assert len(Store(path).runs()) == 1501
    assert interrupted >= 1
    Store(path).put_doc("triggers", "t", {"name": "t"})  # migrates (again) to the end
    store = Store(path)
    assert len(store.runs()) == 1501 == len(stored_runs(store))
    assert store.get_doc("triggers", "t") == {"name": "t"}
    aside = [p for p in path.parent.iterdir() if ".unfinished-" in p.name]
    assert aside and all(p.is_dir() for p in aside)  # moved aside, never deleted
    assert ctui(tmp_path, "doctor").returncode == 0


WRITER = """
import sys
from ctui.store import Store
from ctui.ids import new_run_id
store = Store(sys.argv[1])
me, ids = sys.argv[2], sys.argv[3].split(",")
for i in range(int(sys.argv[4])):
    store.update_run(ids[i % len(ids)], mutate=lambda d: d.__setitem__("n", d.get("n", 0) + 1))
    store.insert_run({"id": new_run_id(), "job": me, "status": "queued"})
"""


def test_writers_across_segments_lose_no_update_and_share_no_number(
    tmp_path: Path, monkeypatch
) -> None:
    store = project_store(tmp_path, monkeypatch, 20, "0a", 200, digits=4)
    assert len(store.segments.names()) == 10
    ids = [r["id"] for r in store.runs()]
    mine = [ids[i::6] for i in range(6)]  # each writer's runs spread over every segment
    env = {**os.environ, "CTUI_SEGMENT_RUNS": "20"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store.path), f"w{i}", ",".join(mine[i]), "40"],
            env=env,
        )
        for i in range(6)
    ]
    while any(p.poll() is None for p in procs):
        runs = stored_runs(store)  # every file parses at every moment
        assert len(runs) >= 200
    assert all(p.returncode == 0 for p in procs)
    runs = store.runs()
    assert len(runs) == 200 + 6 * 40
    assert sum(r.get("n", 0) for r in runs) == 6 * 40
    seqs = [r["seq"] for r in runs]
    assert sorted(seqs) == list(range(1, 441))
    assert len(store.segments.names()) > 10  # the inserts split the last segment


def test_the_indexes_are_made_again_when_deleted_and_a_damaged_one_is_named(
    tmp_path: Path, monkeypatch
) -> None:
    store = project_store(tmp_path, monkeypatch, 10, "0b", 35)
    for idx in store.segments.dir.glob("*.idx"):
        idx.unlink()
    assert store.resolve("0b017") == "0b017" and store.resolve("#35") == "0b034"
    assert len(list(store.segments.dir.glob("*.idx"))) == 4  # made again by that reader

    store.update_run("0b017", {"note": "x"})  # its index is now stale: made again on read
    assert store.run_index()[0][17] == "0b017"

    idx = store.segments.idx_path(store.segments.names()[2])
    idx.write_bytes(b"{not json")
    seg_before = {p.name: p.read_bytes() for p in store.segments.dir.glob("*.json")}
    env = {"CTUI_SEGMENT_RUNS": "10"}
    one_line_error(ctui(tmp_path, "show", "0b02", env=env), ExitCode.BAD_INPUT, idx.name)
    doctor = ctui(tmp_path, "doctor", env=env)
    assert doctor.returncode == ExitCode.FAILED and idx.name in doctor.stdout
    assert "--reindex" in doctor.stdout
    assert idx.read_bytes() == b"{not json"  # nothing overwritten by a check
    fixed = ctui(tmp_path, "doctor", "--reindex", env=env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "index of 4 segment(s)" in fixed.stdout
    assert ctui(tmp_path, "show", "0b025", env=env).returncode == 0
    assert {p.name: p.read_bytes() for p in store.segments.dir.glob("*.json")} == seg_before


def test_an_interrupted_transaction_is_finished_by_the_next_writer(
    tmp_path: Path, monkeypatch
) -> None:
    store = Store(tmp_path / "ctui.json")
    store.initialise()
    store.put_runs({"id": f"r{i}", "status": "queued"} for i in range(3))

    def change(data: dict) -> None:
        data["runs"]["r1"]["status"] = "running"
        data.setdefault("causes", {})["c1"] = {"run": "r1"}

    real = Segments.write
    monkeypatch.setattr(Segments, "write", lambda *a: (_ for _ in ()).throw(OSError(28, "full")))
    with pytest.raises(Exception, match="full|No space"):
        store.transact(change)
    assert store.journal_path.exists()  # the store file is written, the segment is not
    monkeypatch.setattr(Segments, "write", real)
    store.update_run("r2", {"status": "cancelled"})  # the next writer finishes it first
    assert not store.journal_path.exists()
    assert store.get_run("r1")["status"] == "running"
    assert store.get_doc("causes", "c1") == {"run": "r1"}
    assert store.get_run("r2")["status"] == "cancelled"


def test_a_split_interrupted_after_its_new_segment_keeps_one_copy_of_each_run(
    tmp_path: Path, monkeypatch
) -> None:
    store = project_store(tmp_path, monkeypatch, 10, "0c", 10, status="ok")
    calls = []
    real = Segments.write

    def crash_on_the_second(self, lo, docs, seen):  # the new upper segment is written, then…
        calls.append(lo)
        if len(calls) == 2:
            raise OSError(5, "I/O error")
        return real(self, lo, docs, seen)

    monkeypatch.setattr(Segments, "write", crash_on_the_second)
    with pytest.raises(Exception, match="I/O"):
        store.insert_run({"id": "0c0045", "status": "new"})  # 11 runs: 0c009 moves up
    monkeypatch.setattr(Segments, "write", real)
    assert store.segments.names() == ["0", "0c009"]
    raw, _ = Segments(store.segments.dir).read("0")
    assert "0c009" in raw and "0c0045" not in raw  # the old segment was never rewritten
    assert [r["id"] for r in store.runs()] == [f"0c{i:03d}" for i in range(10)]  # one each
    doctor = ctui(tmp_path, "doctor")
    assert "1 copies of runs outside their segment's range" in doctor.stdout, doctor.stdout
    store.update_run("0c009", {"status": "edited"})  # the copy in range is the one changed
    assert store.get_run("0c009")["status"] == "edited"
    store.update_run("0c003", {"status": "edited"})  # the next write of "0" drops the copy
    raw, _ = Segments(store.segments.dir).read("0")
    assert "0c009" not in raw and len(stored_runs(store)) == 10


def test_a_damaged_segment_is_named_by_every_command_and_restored_by_doctor(
    tmp_path: Path,
) -> None:
    (tmp_path / ".ctui").mkdir()
    store = Store(tmp_path / ".ctui" / "ctui.json")
    store.initialise()
    store.put_runs({"id": f"0d{i}", "status": "succeeded"} for i in range(3))
    store.update_run("0d1", {"note": "kept"})
    store.update_run("0d2", {"note": "the last write: its copy is the one lost"})
    seg = segment_file(store, "0d1")
    seg.write_bytes(b'{"runs": {"0d1": ')
    for args in (["runs"], ["show", "0d1"], ["tag", "0d1", "x"]):
        one_line_error(ctui(tmp_path, *args), ExitCode.BAD_INPUT, "unreadable", seg.name)
    assert seg.read_bytes() == b'{"runs": {"0d1": '
    fixed = ctui(tmp_path, "doctor", "--restore")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert store.get_run("0d1")["note"] == "kept"
    kept = [p for p in seg.parent.iterdir() if ".corrupt-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == b'{"runs": {"0d1": '
    with pytest.raises(StoreCorruptError):
        parse_store_bytes(kept[0], kept[0].read_bytes(), segment=True)


def test_a_caching_reader_reads_again_only_the_segments_that_changed(
    tmp_path: Path, monkeypatch
) -> None:
    store = project_store(tmp_path, monkeypatch, 10, "0e", 50)
    reader = Store(store.path, cache=True)
    assert len(reader.snapshot().runs()) == 50
    parsed: list[str] = []
    real = Segments.read
    monkeypatch.setattr(Segments, "read", lambda s, lo: parsed.append(lo) or real(s, lo))
    assert len(reader.snapshot().runs()) == 50
    assert parsed == []  # nothing changed: nothing parsed
    store.update_run("0e023", {"status": "failed", "tags": 5})  # a write, and a damaged run
    snap = reader.snapshot()
    runs = snap.runs()
    assert parsed == [segment_file(store, "0e023").name.removesuffix(".json")]
    assert [r["id"] for r in runs if r["status"] == "failed"] == []
    assert "0e023" in snap.damaged and len(runs) == 49
    store.insert_run({"id": "0e999", "status": "queued"})
    assert [r["id"] for r in reader.snapshot().runs()][-1] == "0e999"
