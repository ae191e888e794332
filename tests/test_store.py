"""The run store: concurrency, crash safety, corruption handling, schema, ids."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from ctui.errors import AmbiguousRunError, CtuiError, StoreCorruptError, UnknownRunError
from ctui.ids import new_run_id
from ctui.store import MIGRATIONS, SCHEMA_VERSION, Store, parse_store_bytes, resolve_ref
from tests.store_helpers import segment_file, stored_runs

WORKER = """
import sys
from ctui.store import Store
store = Store(sys.argv[1])
me = sys.argv[2]
for i in range(int(sys.argv[3])):
    def bump(doc):
        doc["n"] += 1
        doc.setdefault("by", {})[me] = doc.get("by", {}).get(me, 0) + 1
    store.update_run("counter", mutate=bump)
"""


def test_many_writers_lose_no_update(tmp_path: Path) -> None:
    store = Store(tmp_path / "ctui.json")
    store.initialise()
    store.insert_run({"id": "counter", "n": 0})
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(store.path), f"w{i}", "200"])
        for i in range(8)
    ]
    # The files must be loadable at every moment while they write.
    reads = 0
    while any(p.poll() is None for p in procs):
        parse_store_bytes(store.path, store.path.read_bytes())
        assert stored_runs(store)["counter"]["n"] >= 0
        reads += 1
    assert all(p.returncode == 0 for p in procs)
    doc = store.get_run("counter")
    assert doc["n"] == 8 * 200
    assert doc["by"] == {f"w{i}": 200 for i in range(8)}
    assert reads > 0


KILLED_WRITER = """
import sys
from ctui.store import Store
store = Store(sys.argv[1])
print("ready", flush=True)
while True:
    store.update_run("r0", mutate=lambda d: d.update(i=d.get("i", 0) + 1, pad="x" * 200000))
"""


def test_sigkill_mid_write_leaves_a_loadable_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "ctui.json")
    store.initialise()
    store.put_runs({"id": f"r{i}", "params": {"p": i}} for i in range(2000))
    last_i = 0
    for attempt in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, str(store.path)], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.15 + attempt * 0.07)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        parse_store_bytes(store.path, store.path.read_bytes())  # never half-written
        runs = stored_runs(store)  # nor any segment
        assert len(runs) == 2000
        i = runs["r0"].get("i", 0)
        assert i >= last_i
        last_i = i
    assert last_i > 0


def test_corrupt_store_is_a_clear_error_and_is_never_overwritten(tmp_path: Path) -> None:
    store = Store(tmp_path / "ctui.json")
    store.initialise()
    store.insert_run({"id": "a1", "status": "succeeded"})
    good = store.path.read_bytes()
    store.path.write_bytes(good[: len(good) // 2])  # truncated
    broken = store.path.read_bytes()
    with pytest.raises(StoreCorruptError) as info:
        store.runs()
    assert str(store.path) in info.value.message
    assert "doctor" in info.value.hint
    with pytest.raises(StoreCorruptError):
        store.update_run("a1", {"status": "failed"})
    with pytest.raises(StoreCorruptError):
        store.insert_run({"id": "b2"})
    assert store.path.read_bytes() == broken


def test_a_corrupt_segment_is_named_and_never_overwritten(tmp_path: Path) -> None:
    store = Store(tmp_path / "ctui.json")
    store.initialise()
    store.insert_run({"id": "a1", "status": "succeeded"})
    seg = segment_file(store, "a1")
    seg.write_bytes(seg.read_bytes()[:-9])
    broken = seg.read_bytes()
    for attempt in (
        store.runs,
        lambda: store.get_run("a1"),
        lambda: store.update_run("a1", {"status": "failed"}),
        lambda: store.insert_run({"id": "b2"}),
    ):
        with pytest.raises(StoreCorruptError) as info:
            attempt()
        assert str(seg) in info.value.message
    assert seg.read_bytes() == broken


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[1, 2]", b'{"runs": []}', b'{"meta": {"store": {"schema": "x"}}}']
)
def test_hand_broken_shapes_are_rejected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "ctui.json"
    path.write_bytes(content)
    with pytest.raises(StoreCorruptError):
        Store(path).runs()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ctui.json"
    path.write_bytes(orjson.dumps({"meta": {"store": {"schema": SCHEMA_VERSION + 1}}}))
    with pytest.raises(CtuiError, match="newer|knows up to"):
        Store(path).runs()


def test_migration_path_runs_from_version_zero(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "ctui.json"
    path.write_bytes(orjson.dumps({"meta": {"store": {"schema": 0}}, "runs": {"x": {"id": "x"}}}))
    seen = []
    monkeypatch.setitem(MIGRATIONS, 0, lambda d: seen.append(0) or d)
    store = Store(path)
    store.update_run("x", {"status": "succeeded"})
    assert seen
    assert orjson.loads(path.read_bytes())["meta"]["store"]["schema"] == SCHEMA_VERSION


def test_every_write_keeps_the_previous_copy(tmp_path: Path) -> None:
    store = Store(tmp_path / "ctui.json")
    store.initialise()
    store.insert_run({"id": "a1", "status": "running"})
    store.update_run("a1", {"status": "succeeded"})
    seg = segment_file(store, "a1")
    backup = orjson.loads(seg.with_name(seg.name + ".bak").read_bytes())
    assert backup["runs"]["a1"]["status"] == "running"
    assert orjson.loads((tmp_path / "ctui.json.bak").read_bytes())["meta"]["store"]


def test_compare_and_set_update(tmp_path: Path) -> None:
    store = Store(tmp_path / "ctui.json")
    store.insert_run({"id": "a1", "status": "cancelled"})
    skipped = store.update_run(
        "a1", {"status": "succeeded"}, when=lambda d: d["status"] == "running"
    )
    assert skipped is None
    assert store.get_run("a1")["status"] == "cancelled"


def test_ids_are_unique_and_time_sortable() -> None:
    ids = [new_run_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 12 for i in ids)
    older = new_run_id(now=time.time() - 3600)
    assert older < new_run_id()


def test_prefix_resolution() -> None:
    ids = sorted(["0abc1111", "0abc2222", "0abd3333"])
    assert resolve_ref("0abd", ids) == "0abd3333"
    assert resolve_ref("0abc1111", ids) == "0abc1111"
    assert resolve_ref("@last", ids) == "0abd3333"
    assert resolve_ref("@last~2", ids) == "0abc1111"
    with pytest.raises(AmbiguousRunError) as info:
        resolve_ref("0abc", ids)
    assert info.value.candidates == ["0abc1111", "0abc2222"]
    with pytest.raises(UnknownRunError):
        resolve_ref("zz", ids)
    with pytest.raises(UnknownRunError):
        resolve_ref("@last~9", ids)


def test_store_file_found_by_walking_up(tmp_path: Path, monkeypatch) -> None:
    from ctui.project import find_project

    (tmp_path / ".ctui").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project(deep).root == tmp_path
    monkeypatch.setenv("CTUI_STORE", str(tmp_path / "elsewhere" / "x.json"))
    assert find_project(deep).store_file == tmp_path / "elsewhere" / "x.json"
    monkeypatch.delenv("CTUI_STORE")
    with pytest.raises(CtuiError, match="not a ctui project"):
        find_project(Path("/"))


def test_lock_is_released_when_a_holder_dies(tmp_path: Path) -> None:
    store = Store(tmp_path / "ctui.json")
    store.initialise()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom ctui.store import Store\n"
            "s = Store(sys.argv[1])\nwith s.locked():\n    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            str(store.path),
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"held"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store.insert_run({"id": "after"})  # would hang forever if the lock outlived its holder
    assert store.get_run("after")["id"] == "after"


def test_one_run_per_line_and_single_line_updates(tmp_path: Path) -> None:
    store = Store(tmp_path / "ctui.json")
    store.initialise()
    store.put_runs({"id": f"r{i}", "status": "running", "note": "a\nb {x}"} for i in range(5))
    store.insert_run({"id": "r9", "status": "queued"})
    store.update_run("r2", {"status": "failed"})
    store.update_run("r9", {"status": "running"})
    raw = segment_file(store, "r0").read_bytes()
    data = orjson.loads(raw)  # still one plain JSON document
    assert [data["runs"][f"r{i}"]["status"] for i in (0, 1, 2, 3, 4, 9)] == [
        "running", "running", "failed", "running", "running", "running",
    ]  # fmt: skip
    assert data["runs"]["r0"]["note"] == "a\nb {x}"
    run_lines = [line for line in raw.split(b"\n") if line.startswith(b'"r') and b'"id"' in line]
    assert len(run_lines) == 6
    with pytest.raises(CtuiError, match="already exists"):
        store.insert_run({"id": "r9"})
    with pytest.raises(UnknownRunError):
        store.update_run("nope", {"status": "failed"})


def test_a_damaged_run_line_is_reported_not_rewritten(tmp_path: Path) -> None:
    store = Store(tmp_path / "ctui.json")
    store.initialise()
    store.put_runs({"id": f"r{i}", "status": "running"} for i in range(3))
    seg = segment_file(store, "r1")
    raw = seg.read_bytes().replace(b'"r1":{"id":"r1"', b'"r1":{"id":r1"')
    seg.write_bytes(raw)
    with pytest.raises(StoreCorruptError):
        store.update_run("r1", {"status": "failed"})
    assert seg.read_bytes() == raw
