"""Run ids are checked where they come in (`ctui import`, run references, `Project.run_dir`):
an id is one safe path component, so nothing a run names is ever outside `.ctui/runs/`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_helpers import ctui, one_line_error

from ctui.errors import CtuiError, ExitCode
from ctui.ids import check_run_doc, check_run_ref, is_run_id, new_run_id
from ctui.project import Project
from ctui.store import Store


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A project three folders down, and a folder outside it the attacker aims at."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me\n")
    (victim / "output.log").write_text("the victim's private log\n")
    root = tmp_path / "a" / "b" / "proj"
    root.mkdir(parents=True)
    assert ctui(root, "init").returncode == 0
    return root, victim


def record(run: object, **extra: object) -> str:
    return json.dumps({"run": run, **extra}) + "\n"


def good_run(run_id: str) -> dict[str, object]:
    return {"id": run_id, "job": "train", "status": "succeeded", "tags": ["x"], "params": {}}


# -- what an id may be -----------------------------------------------------------------------


def test_ids_ctui_and_mlflow_make_are_valid() -> None:
    ids = {new_run_id() for _ in range(2000)}
    assert all(is_run_id(i) and len(i) == 12 for i in ids)
    assert is_run_id("0123456789abcdef0123456789abcdef")  # an MLflow run id: 32 hex chars
    for name in ("run-a", "r1", "a1", "never0000001", "x.y_z-1"):
        assert is_run_id(name), name


@pytest.mark.parametrize(
    "bad",
    ["../../../victim", "..", ".", "a/b", "/etc", "a\\b", "a\nb", "a\x00b", "", " x", "x y",
     "-rf", "@last", "é", "a" * 65, 5, None, ["a"]],
)  # fmt: skip
def test_ids_that_are_not_one_safe_path_component_are_refused(bad: object) -> None:
    assert not is_run_id(bad)
    with pytest.raises(CtuiError) as err:
        check_run_doc({"id": bad})
    assert "not a run id" in err.value.message
    assert err.value.code == ExitCode.BAD_INPUT


def test_run_dir_refuses_an_id_that_would_leave_runs(tmp_path: Path) -> None:
    project = Project(root=tmp_path, state_dir=tmp_path / ".ctui")
    assert project.run_dir("0aaaaaaa0001") == tmp_path / ".ctui" / "runs" / "0aaaaaaa0001"
    for bad in ("../../victim", "a/b", "..", "x\n", "x\x00"):
        with pytest.raises(CtuiError, match="not a run id"):
            project.run_dir(bad)


def test_a_run_ref_that_can_never_name_a_run_is_refused() -> None:
    for ok in ("0aaa", "@last", "@last~2", "run-a"):
        assert check_run_ref(ok) == ok
    for bad in ("../x", "a/b", "x\x00"):
        with pytest.raises(CtuiError, match="not a run id"):
            check_run_ref(bad)


# -- ctui import ------------------------------------------------------------------------------


def test_import_refuses_a_traversal_id_naming_the_line_and_imports_nothing(
    world: tuple[Path, Path],
) -> None:
    root, victim = world
    dump = root / "dump.jsonl"
    dump.write_text(record(good_run("0aaaaaaa0001")) + record({"id": "../../../victim"}))
    out = ctui(root, "import", str(dump))
    one_line_error(out, ExitCode.BAD_INPUT, "dump.jsonl:2", "not a run id", "'../../../victim'")
    assert "nothing was imported" in out.stderr
    assert Store(root / ".ctui" / "ctui.json").runs() == []  # the good line did not go in alone
    assert (victim / "precious.txt").read_text() == "keep me\n"


@pytest.mark.parametrize("bad", ["a\nb", "a\x00b", "a/b", "..", ""])
def test_import_refuses_ids_with_newlines_nul_or_slashes(
    world: tuple[Path, Path], bad: str
) -> None:
    root, _ = world
    dump = root / "dump.jsonl"
    dump.write_text(record(good_run(bad)))
    one_line_error(ctui(root, "import", str(dump)), ExitCode.BAD_INPUT, "dump.jsonl:1", "run id")
    assert Store(root / ".ctui" / "ctui.json").runs() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("tags", "str"), ("params", 5), ("metrics", [1]), ("exit_code", "0"), ("command", "ls"),
     ("started", "noon"), ("note", 3), ("tags", [1]), ("parent", "../x"), ("mlflow", "yes")],
)  # fmt: skip
def test_import_refuses_wrongly_typed_fields_with_the_fields_name(
    world: tuple[Path, Path], field: str, value: object
) -> None:
    root, _ = world
    dump = root / "dump.jsonl"
    dump.write_text(record(good_run("0aaaaaaa0001")) + record({**good_run("b2"), field: value}))
    out = ctui(root, "import", str(dump))
    one_line_error(out, ExitCode.BAD_INPUT, "dump.jsonl:2", f"'{field}'")
    assert Store(root / ".ctui" / "ctui.json").runs() == []


def test_import_refuses_a_metric_that_is_not_a_number(world: tuple[Path, Path]) -> None:
    root, _ = world
    dump = root / "dump.jsonl"
    dump.write_text(record({**good_run("b2"), "metrics": {"acc": "high"}}))
    one_line_error(ctui(root, "import", str(dump)), ExitCode.BAD_INPUT, "metric 'acc'")


def test_import_refuses_damaged_objects_and_records(world: tuple[Path, Path]) -> None:
    root, _ = world
    dump = root / "dump.jsonl"
    for text, words in [
        (record(good_run("b2"), objects={"ab" * 32: "%%% not base64"}), ("not base64",)),
        (record(good_run("b2"), objects=["x"]), ('"objects"',)),
        (json.dumps([1]) + "\n", ("not a ctui export record",)),
        ("{not json\n", ("not a ctui export record",)),
        (record("a run"), ("must be an object",)),
    ]:
        dump.write_text(record(good_run("0aaaaaaa0001")) + text)
        one_line_error(ctui(root, "import", str(dump)), ExitCode.BAD_INPUT, "dump.jsonl:2", *words)
    assert Store(root / ".ctui" / "ctui.json").runs() == []
    assert not any((root / ".ctui" / "objects").rglob("*.*"))


def test_good_ids_still_import_and_their_folders_are_inside_runs(world: tuple[Path, Path]) -> None:
    root, _ = world
    ids = [new_run_id(), "0123456789abcdef0123456789abcdef", "run-a"]
    dump = root / "dump.jsonl"
    dump.write_text("".join(record(good_run(i)) for i in ids) + "\n")
    out = ctui(root, "import", str(dump))
    assert out.returncode == 0, out.stderr
    assert "imported 3 run(s)" in out.stdout
    assert sorted(r["id"] for r in Store(root / ".ctui" / "ctui.json").runs()) == sorted(ids)
    shown = json.loads(ctui(root, "show", "run-a", "--json").stdout)
    assert Path(shown["run_dir"]) == root / ".ctui" / "runs" / "run-a"


# -- run references on the command line -------------------------------------------------------


@pytest.mark.parametrize("command", [("logs",), ("show",), ("rm", "--yes"), ("tag",)])
def test_a_traversal_ref_on_the_command_line_is_bad_input(
    world: tuple[Path, Path], command: tuple[str, ...]
) -> None:
    root, victim = world
    Store(root / ".ctui" / "ctui.json").put_runs([good_run("0aaaaaaa0001")])
    args = [*command, "../../../victim"] + (["t"] if command == ("tag",) else [])
    one_line_error(ctui(root, *args), ExitCode.BAD_INPUT)
    assert (victim / "precious.txt").read_text() == "keep me\n"
    assert [r["id"] for r in Store(root / ".ctui" / "ctui.json").runs()] == ["0aaaaaaa0001"]


def test_a_store_that_already_holds_a_traversal_id_cannot_reach_outside(
    world: tuple[Path, Path],
) -> None:
    """A store written before ids were checked (or by hand): its bad id is refused where it
    would become a path, so `logs` does not read and `rm` does not delete the victim's files."""
    root, victim = world
    evil = "../../../victim"
    Store(root / ".ctui" / "ctui.json").put_runs([{**good_run(evil), "status": "failed"}])
    out = ctui(root, "logs", "../")
    one_line_error(out, ExitCode.BAD_INPUT, "not a run id")
    assert "private log" not in out.stdout
    one_line_error(ctui(root, "rm", "--yes", "../"), ExitCode.BAD_INPUT, "not a run id")
    assert (victim / "precious.txt").read_text() == "keep me\n"
    assert (victim / "output.log").exists()


# -- the state folder -------------------------------------------------------------------------


def test_a_dangling_ctui_symlink_is_a_clear_error_and_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "ctui.toml").write_text('[jobs.a]\ncommand = "true"\n')
    target = tmp_path / "gone"
    (root / ".ctui").symlink_to(target)
    for args in (("init",), ("run", "a")):
        out = ctui(root, *args)
        one_line_error(out, ExitCode.BAD_INPUT, ".ctui is a symlink to", str(target))
        assert "FileExistsError" not in out.stderr
    assert (root / ".ctui").is_symlink() and os.readlink(root / ".ctui") == str(target)
    assert not target.exists()


def test_a_ctui_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".ctui").write_text("not a folder\n")
    one_line_error(ctui(tmp_path, "init"), ExitCode.BAD_INPUT, "is not a folder")
    assert (tmp_path / ".ctui").read_text() == "not a folder\n"
