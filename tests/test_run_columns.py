"""Runs as columns (`ctui.run_columns`) against run documents: on a segmented store of runs
that look like a user's (several jobs, statuses, triggers, tags, notes, metrics missing on
some runs, params of mixed types, a Slurm run, a failed gate), `RunColumns.select` and
`order` agree with `ctui.query.filter_runs` and `sort_runs`, a `Row` reads as the document,
`Store.columns()` equals the columns of `Store.runs()`, a caching reader reads again only the
changed segment's index, and damaged runs, old or damaged indexes and the copies of an
interrupted split are dealt with."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from ctui.errors import StoreCorruptError
from ctui.ids import new_run_id
from ctui.query import filter_runs, parse_filter, sort_runs
from ctui.run_columns import RunColumns, block, block_within, check_block
from ctui.store import Store, dump_store
from ctui.store_segments import COLUMNS_VERSION, Segments, inside
from tests.store_helpers import segment_file
from tests.test_store_hardening import ctui

T0 = 1_767_225_600.0  # 2026-01-01
N = 40
GOLDEN = Path(__file__).parent / "golden" / "store_v1.json.gz"


def user_run(i: int) -> dict[str, Any]:
    """Run `i` of a project's history: every field varies, some are missing."""
    started = T0 + 600 * i
    doc: dict[str, Any] = {
        "id": new_run_id(now=started - 2),
        "job": ("train", "eval", "sweep")[i % 3],
        "status": ("succeeded", "failed", "succeeded", "cancelled", "timeout", "running", "failed")[
            i % 7
        ],
        "trigger": ("manual", "nightly", "push", "nightly")[i % 4],
        "created": started - 2,
        "started": started,
        "backend": "slurm" if i == 7 else "local",
        "host": "gpu-01",
        "git": ("abcdef0123456789", "1234abcdef567890")[i % 2],
    }
    if i % 4:
        doc["duration"] = 30.0 + (i * 7) % 50
        doc["ended"] = started + doc["duration"]
        doc["exit_code"] = int(doc["status"] != "succeeded")
    if i % 6 != 5:
        acc = (0.75, 0.93, 0.5, 0.42, 1, 0.97, 0.75, 0.3)[i % 8]
        doc["metrics"] = {"acc": acc, "loss": round(1 - acc, 3)}
        if i % 3 == 0:
            doc["metrics"]["f1"] = 0.6 + i / 100
    params: dict[str, Any] = {"lr": (0.01, 0.001, 0.1)[i % 3]}
    if i % 7 != 3:
        params["opt"] = ("adam", "sgd")[i % 2]
    if i % 3 == 0:
        params["flag"] = (True, False)[i % 2]
    if i % 8 in (1, 2):
        params["x"] = "" if i % 8 == 1 else 3
    params["bs"] = (32, "auto", 64.0, True, "16")[i % 5]  # int, text, float, bool, numeric text
    if i % 10 == 4:
        params["layers"] = [64, 128]
    doc["params"] = params
    tags = (["baseline"], ["baseline", "gpu"], ["gpu"], [])[i % 4]
    if tags or i % 8 == 3:
        doc["tags"] = tags
    if i % 5 in (0, 1):
        doc["note"] = ("new data loader", "fixed the eval bug")[i % 5]
    if i == 7:
        doc["slurm"] = {"job_id": "123", "reason": "Priority"}
    if i == 13:
        doc["slurm"] = {"job_id": 1234, "reason": "Resources"}
    if i in (9, 10):
        doc["gate"] = {"passed": i == 10, "verdict": "acc fell 3 points" if i == 9 else "ok"}
    return doc


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A project store of `N` user runs in segments of 6 runs (7 segments)."""
    monkeypatch.setenv("CTUI_SEGMENT_RUNS", "6")
    (tmp_path / ".ctui").mkdir()
    s = Store(tmp_path / ".ctui" / "ctui.json")
    s.initialise()
    s.put_runs(user_run(i) for i in range(N))
    assert len(s.segments.names()) == 7
    return s


def ids_of(table: RunColumns, indices: Any) -> list[str]:
    col = table.column("id")
    return [col[i] for i in indices]


def same_columns(got: RunColumns, want: RunColumns) -> None:
    assert got.n == want.n
    assert set(got.cols) == set(want.cols)
    for key, col in want.cols.items():
        assert got.cols[key] == col, key


FILTERS = [
    "status=failed",
    "status=succeeded,failed",
    "status!=failed",
    "metric.acc>0.9",
    "metric.acc<=0.5",
    "metric.acc=0.75",
    "metric.acc!=0.75",
    "metric.acc>=1",
    "metric.f1<0.8",
    "param.lr=0.01",
    "param.opt=adam",
    "param.flag=true",
    "param.x=",
    "param.bs=16",
    "param.bs>20",
    "param.layers=64",
    "tag=baseline",
    "tag!=baseline",
    "tag=gpu,baseline",
    "note~data",
    'note~"eval bug"',
    "#3",
    "seq>5",
    "seq<=30 seq>=25",
    "nightly",
    "job=train status=failed metric.acc>0.5",
    "train nightly",
    "git=abcd",
    "sha=1234abcdef",
    "slurm.job_id=123",
    "slurm.reason~prio",
    "exit=1",
    "duration>50",
    "job!=eval trigger=push",
]


def test_select_gives_the_runs_filter_runs_gives(store: Store) -> None:
    runs = store.runs()
    table = store.columns()
    assert len(runs) == len(table) == N
    first = runs[12]["id"]
    for text in [*FILTERS, first[:9], first[:4], f"id={first[:6]}"]:
        want = [r["id"] for r in filter_runs(runs, text)]
        assert ids_of(table, table.select(parse_filter(text))) == want, text
        assert 0 < len(want) < N or text == first[:4], (text, len(want))  # each one judges
    assert ids_of(table, table.select(parse_filter("slurm.job_id=123"))) == [runs[7]["id"]]
    assert ids_of(table, table.select(parse_filter(""))) == [r["id"] for r in runs]


@pytest.mark.parametrize(
    "key",
    ["started", "duration", "status", "job", "metric.acc", "metric.f1", "param.bs", "tags",
     "tag", "note", "seq", "slurm.job_id", "param.flag"],
)  # fmt: skip
def test_order_gives_the_order_sort_runs_gives(store: Store, key: str) -> None:
    runs = store.runs()
    table = store.columns()
    for desc in (False, True):
        want = [r["id"] for r in sort_runs(runs, key, desc)]
        assert ids_of(table, table.order(key, desc)) == want, (key, desc)


def test_a_row_reads_as_its_run_document(store: Store) -> None:
    runs = store.runs()
    rows = store.columns().rows()
    for doc, row in zip(runs, rows, strict=True):
        assert row["id"] == doc["id"] and row["seq"] == doc["seq"]
        assert row.get("metrics") == doc.get("metrics", {})
        assert row.get("params") == doc["params"]
        for name, value in doc["params"].items():  # 1, 1.0 and True stay themselves
            assert type(row.get("params")[name]) is type(value), name
        assert row.get("tags") == (doc.get("tags") or None)
        assert row.get("slurm") == doc.get("slurm")
        gate = doc.get("gate")
        assert row.get("gate") == ({"passed": gate["passed"]} if gate else None)
        assert row.value("metric.acc") == doc.get("metrics", {}).get("acc")
        assert row["note"] == doc.get("note")  # None where the run has none
        for key in ("status", "job", "trigger", "started", "duration", "git"):
            assert row[key] == doc.get(key), key
        with pytest.raises(KeyError):
            row["no_such_field"]
    assert rows[9]["gate"] == {"passed": False} and rows[10]["gate"] == {"passed": True}
    assert rows[7]["slurm"] == {"job_id": "123", "reason": "Priority"}
    assert rows[5].get("metrics") == {} and rows[5].value("metric.acc") is None
    assert rows[4]["duration"] is None and rows[4].value("param.layers") == (64, 128)


def test_repeated_values_are_kept_once(store: Store) -> None:
    table = store.columns()
    jobs, hosts = table.column("job"), table.column("host")
    assert jobs[0] == jobs[3] == "train" and jobs[0] is jobs[3]
    assert all(h is hosts[0] for h in hosts)
    tags = table.column("tags")
    assert tags[1] == ("baseline", "gpu") and tags[1] is tags[5]


def test_store_columns_equal_the_columns_of_its_runs(store: Store) -> None:
    same_columns(store.columns(), RunColumns.from_runs(store.runs()))
    same_columns(Store(store.path, cache=True).columns(), RunColumns.from_runs(store.runs()))


def test_a_one_file_store_gives_the_same_columns_and_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "ctui.json"
    path.write_bytes(gzip.decompress(GOLDEN.read_bytes()))
    original = path.read_bytes()
    store = Store(path)
    same_columns(store.columns(), RunColumns.from_runs(store.runs()))
    assert len(store.columns()) == 1501 and path.read_bytes() == original
    assert not store.segments.dir.exists()


def test_a_caching_reader_reads_again_only_the_changed_segments_columns(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = Store(store.path, cache=True)
    before = reader.columns()
    old = [{k: c[i] for k, c in before.cols.items()} for i in range(before.n)]
    target = before.column("id")[20]
    Store(store.path).update_run(target, {"tags": ["best", "gpu"]})
    calls: list[str] = []
    real = Segments.columns

    def counted(self: Segments, lo: str) -> dict[str, Any]:
        calls.append(lo)
        return real(self, lo)

    monkeypatch.setattr(Segments, "columns", counted)
    after = reader.columns()
    assert calls == [segment_file(store, target).stem]
    assert after.column("id") == before.column("id")
    assert after.rows()[20]["tags"] == ["best", "gpu"]
    for i in range(after.n):
        if i != 20:
            assert {k: c[i] for k, c in after.cols.items() if c[i] is not None} == {
                k: v for k, v in old[i].items() if v is not None
            }
    same_columns(after, RunColumns.from_runs(store.runs()))
    calls.clear()
    assert reader.columns().column("tags")[20] == ("best", "gpu") and calls == []


def test_a_wrongly_typed_run_is_left_out_of_the_columns(store: Store) -> None:
    victim = store.runs()[15]["id"]
    seg = segment_file(store, victim)
    data = orjson.loads(seg.read_bytes())
    data["runs"][victim]["metrics"] = {"acc": "high"}
    seg.write_bytes(dump_store(data))
    for reader in (Store(store.path), Store(store.path, cache=True)):
        ids = reader.columns().column("id")
        assert victim not in ids and len(ids) == N - 1
    runs = store.runs()
    assert victim in store.damaged
    assert store.columns().column("id") == [r["id"] for r in runs]
    table = orjson.loads(store.segments.cols_path(seg.stem).read_bytes())["table"]
    assert victim in table["damaged"] and victim not in table["cols"]["id"]
    b = block([(victim, data["runs"][victim])])
    assert b["n"] == 0 and "metric 'acc' must be a number" in b["damaged"][victim]


def test_old_columns_are_remade_and_a_damaged_table_is_named_then_reindexed(
    store: Store, tmp_path: Path
) -> None:
    want = RunColumns.from_runs(store.runs())
    lo = store.segments.names()[2]
    idx = store.segments.cols_path(lo)
    current = orjson.loads(idx.read_bytes())
    assert current["version"] == COLUMNS_VERSION == 1 and check_block(current["table"])
    assert "table" not in orjson.loads(store.segments.idx_path(lo).read_bytes())  # kept small
    idx.write_bytes(orjson.dumps({**current, "version": 0}))  # another ctui's
    same_columns(Store(store.path).columns(), want)
    remade = orjson.loads(idx.read_bytes())
    assert remade["version"] == 1 and remade["table"] == current["table"]

    damaged = orjson.loads(idx.read_bytes())
    damaged["table"]["cols"]["status"] = damaged["table"]["cols"]["status"][:-1]
    assert not check_block(damaged["table"])
    idx.write_bytes(orjson.dumps(damaged))
    for reader in (Store(store.path), Store(store.path, cache=True)):
        with pytest.raises(StoreCorruptError, match=str(idx).replace(".", r"\.")):
            reader.columns()
    fixed = ctui(tmp_path, "doctor", "--reindex")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "index of 7 segment(s)" in fixed.stdout
    same_columns(Store(store.path).columns(), want)
    assert check_block(orjson.loads(idx.read_bytes())["table"])


def test_the_copies_of_an_interrupted_split_are_not_shown_twice(store: Store) -> None:
    runs = store.runs()
    names = store.segments.names()
    lower, upper = store.segments.path(names[2]), store.segments.path(names[3])
    moved = orjson.loads(upper.read_bytes())["runs"]
    stale = {k: {**d, "status": "running", "tags": ["stale copy"]} for k, d in moved.items()}
    data = orjson.loads(lower.read_bytes())
    data["runs"].update(stale)  # the lower segment was not rewritten after the split
    lower.write_bytes(dump_store(data))
    want = RunColumns.from_runs(runs)
    for reader in (Store(store.path), Store(store.path, cache=True)):
        got = reader.columns()
        assert got.column("id") == [r["id"] for r in runs]
        same_columns(got, want)
        assert not got.select(parse_filter("tag='stale copy'"))
    idx = orjson.loads(store.segments.cols_path(names[2]).read_bytes())
    assert set(moved) <= set(idx["table"]["cols"]["id"])  # the index holds them; not shown
    b = idx["table"]
    within = inside(names[2], names[3])
    assert block_within(b, within)["n"] == b["n"] - len(moved)
    assert block_within(b, lambda k: True) is b


def test_a_caching_reader_shows_a_split_off_run_once(store: Store) -> None:
    reader = Store(store.path, cache=True)
    want = [r["id"] for r in store.runs()]
    assert reader.columns().column("id") == want
    lo = store.segments.names()[2]
    docs, _ = store.segments.read(lo)
    upper = sorted(docs)[3:]
    store.segments.write(upper[0], {k: docs[k] for k in upper}, None)  # a split's first write
    assert [r["id"] for r in Store(store.path).runs()] == want
    assert Store(store.path).columns().column("id") == want
    assert reader.columns().column("id") == want
