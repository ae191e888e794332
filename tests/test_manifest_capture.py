"""Manifest capture against real git repositories and real DVC projects (`dvc add`, `dvc repro`)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ctui.diff import diff_manifests
from ctui.manifest import SECTIONS, capture, load, save, section_hash
from ctui.manifest.code import parse_status
from ctui.manifest.compute import gpu_static_info
from ctui.manifest.data import CACHE_FILE
from ctui.manifest.env import canonical_name, installed_distributions
from ctui.objects import ObjectStore
from tests.conftest import git

pytestmark = pytest.mark.timeout(120)

PREP = """\
import os, sys
os.makedirs("data/prepared", exist_ok=True)
rows = open("data/raw.csv").read().split()
cut = int(len(rows) * 0.8)
open("data/prepared/train.csv", "w").write("\\n".join(rows[:cut]))
open("data/prepared/test.csv", "w").write("\\n".join(rows[cut:]))
"""
DVC_YAML = """\
stages:
  prepare:
    cmd: {python} prep.py
    deps:
    - prep.py
    - data/raw.csv
    params:
    - prepare.split
    outs:
    - data/prepared
"""


def dvc(cwd: Path, *args: str) -> None:
    """The real `dvc` command line, run in this process: each new process pays ~2 s of imports."""
    from dvc.cli import main

    os.environ["DVC_NO_ANALYTICS"] = "1"
    here = Path.cwd()
    os.chdir(cwd)
    try:
        assert main(list(args)) == 0, f"dvc {' '.join(args)} failed in {cwd}"
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def dvc_states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A git+DVC project in two states: `a` as built, `b` after the raw data changed.

    Built once per module (each dvc call takes seconds); tests copy what they modify.
    """
    base = tmp_path_factory.mktemp("dvc")
    repo = base / "a"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "commit.gpgsign", "false")
    dvc(repo, "init", "-q")
    (repo / "data").mkdir()
    (repo / "data" / "raw.csv").write_text("\n".join(str(i) for i in range(1000)) + "\n")
    (repo / "prep.py").write_text(PREP)
    (repo / "params.yaml").write_text("prepare:\n  split: 0.8\n")
    (repo / "dvc.yaml").write_text(DVC_YAML.format(python=sys.executable))
    dvc(repo, "add", "-q", "data/raw.csv")
    dvc(repo, "repro", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data pipeline")
    b = base / "b"
    shutil.copytree(repo, b, symlinks=True)
    (b / "data" / "raw.csv").write_text("\n".join(str(i) for i in range(1200)) + "\n")
    dvc(b, "add", "-q", "data/raw.csv")
    dvc(b, "repro", "-q")
    git(b, "commit", "-q", "-am", "more data")
    return {"a": repo, "b": b}


# -- data ------------------------------------------------------------------------------------


def test_data_section_reads_dvc_lock_and_dvc_files(dvc_states: dict[str, Path]) -> None:
    data = capture(dvc_states["a"], sections=["data"])["sections"]["data"]
    assert data["status"] == "ok"
    paths = data["paths"]
    # prep.py is a stage dep git tracks: code, not data
    assert set(paths) == {"data/raw.csv", "data/prepared"}
    assert data["code_deps"] == ["prep.py"]
    assert paths["data/prepared"]["nfiles"] == 2
    assert paths["data/prepared"]["hash"].endswith(".dir")
    assert paths["data/prepared"]["role"] == "output"
    assert paths["data/raw.csv"]["role"] == "input"
    assert paths["data/raw.csv"]["sources"] == [
        "data/raw.csv.dvc", "dvc.lock:prepare:dep", "dvc.yaml:prepare:dep",
    ]  # fmt: skip
    assert paths["data/raw.csv"]["size"] == (dvc_states["a"] / "data" / "raw.csv").stat().st_size
    assert data["params"] == {"params.yaml": {"prepare.split": 0.8}}
    assert data["sources"] == ["data/raw.csv.dvc", "dvc.lock", "dvc.yaml"]
    assert data["stale"] == []


def test_data_section_works_without_the_data(dvc_states: dict[str, Path], tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(dvc_states["a"]), str(clone))
    assert not (clone / "data" / "raw.csv").exists()  # DVC data is not in git
    here = capture(clone, sections=["data"])["sections"]["data"]
    there = capture(dvc_states["a"], sections=["data"])["sections"]["data"]
    assert here["hash"] == there["hash"]


def test_data_change_gives_a_data_only_verdict(dvc_states: dict[str, Path]) -> None:
    a = capture(dvc_states["a"], sections=["data", "env", "compute"])
    b = capture(dvc_states["b"], sections=["data", "env", "compute"])
    result = diff_manifests(a, b)
    assert result["verdict"] == "only data changed: data/prepared, data/raw.csv"
    changed = result["sections"]["data"]["changed"]["data/raw.csv"]
    assert changed["old"]["hash"] != changed["new"]["hash"]
    assert result["sections"]["env"]["status"] == "identical"


def test_dvc_files_are_found_without_git_and_caches_are_skipped(
    dvc_states: dict[str, Path], tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(dvc_states["a"], plain, symlinks=True)
    shutil.rmtree(plain / ".git")
    # a .dvc file inside DVC's cache or ctui's state is never data of the project
    for junk in (plain / ".dvc" / "cache" / "x.dvc", plain / ".ctui" / "y.dvc"):
        junk.parent.mkdir(parents=True, exist_ok=True)
        junk.write_text("outs:\n- path: junk\n  md5: 0\n")
    data = capture(plain, sections=["data"])["sections"]["data"]
    # without git, a stage's script cannot be told from data: it counts as an input
    assert set(data["paths"]) == {"data/raw.csv", "data/prepared", "prep.py"}


def test_broken_dvc_file_is_a_recorded_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "bad.dvc").write_text("outs: [unclosed\n")
    (tmp_path / "good.dvc").write_text("outs:\n- md5: abc\n  size: 3\n  path: good.bin\n")
    data = capture(tmp_path, sections=["data"])["sections"]["data"]
    assert data["status"] == "ok"
    assert set(data["paths"]) == {"good.bin"}
    assert data["problems"] and data["problems"][0].startswith("bad.dvc:")


def test_no_dvc_is_absent_with_reason(tmp_path: Path) -> None:
    data = capture(tmp_path, sections=["data"])["sections"]["data"]
    assert data["status"] == "absent"
    assert "no dvc.lock" in data["reason"]


def test_declared_data_paths_use_the_size_mtime_cache(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "big.bin"
    f.write_bytes(b"a" * 1000)
    (tmp_path / "d" / "small.txt").write_text("x")
    cache = tmp_path / "cache"
    first = capture(tmp_path, sections=["data"], data_paths=["d", "d/big.bin"], cache_dir=cache)
    entry = first["sections"]["data"]["paths"]["d"]
    assert entry["nfiles"] == 2 and entry["size"] == 1001
    assert (cache / CACHE_FILE).is_file()
    # same size and mtime, other bytes: the cache answers (this is what makes re-capture instant)
    st = f.stat()
    f.write_bytes(b"b" * 1000)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = capture(tmp_path, sections=["data"], data_paths=["d", "d/big.bin"], cache_dir=cache)
    assert second["sections"]["data"]["hash"] == first["sections"]["data"]["hash"]
    # a new mtime makes it hash the file again
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    third = capture(tmp_path, sections=["data"], data_paths=["d", "d/big.bin"], cache_dir=cache)
    assert third["sections"]["data"]["paths"]["d/big.bin"]["hash"] != entry["hash"]
    assert third["sections"]["data"]["paths"]["d"]["hash"] != entry["hash"]


def test_parsed_dvc_files_are_cached_by_size_and_mtime(tmp_path: Path) -> None:
    lock = tmp_path / "dvc.lock"
    lock.write_text("stages:\n  s:\n    outs:\n    - path: out\n      md5: aaaa\n")
    cache = tmp_path / "cache"
    first = capture(tmp_path, sections=["data"], cache_dir=cache)["sections"]["data"]
    st = lock.stat()
    lock.write_text("stages:\n  s:\n    outs:\n    - path: out\n      md5: bbbb\n")
    os.utime(lock, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = capture(tmp_path, sections=["data"], cache_dir=cache)["sections"]["data"]
    assert again["paths"]["out"]["hash"] == "aaaa"  # served from the cache
    fresh = capture(tmp_path, sections=["data"])["sections"]["data"]  # no cache: parsed
    assert fresh["paths"]["out"]["hash"] == "bbbb"
    assert first["hash"] == again["hash"] != fresh["hash"]


def test_missing_declared_path_is_marked(tmp_path: Path) -> None:
    data = capture(tmp_path, sections=["data"], data_paths=["nope.csv"])["sections"]["data"]
    assert data["paths"]["nope.csv"]["missing"] is True


# -- code ------------------------------------------------------------------------------------


def test_code_section_clean_repo(git_repo: Path) -> None:
    code = capture(git_repo, sections=["code"])["sections"]["code"]
    assert code["status"] == "ok"
    assert code["commit"] == git(git_repo, "rev-parse", "HEAD")
    assert code["branch"] == "main"
    assert code["dirty"] is False and code["patch"] is None
    assert code["untracked"] == []


def test_code_section_dirty_repo_stores_a_binary_safe_patch(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / "README.md").write_text("changed\n")
    (git_repo / "blob.bin").write_bytes(bytes(range(256)))
    git(git_repo, "add", "blob.bin")
    (git_repo / "new.txt").write_text("untracked\n")
    (git_repo / ".ctui").mkdir()
    (git_repo / ".ctui" / "state").write_text("ctui's own state is not code\n")
    m = capture(git_repo, sections=["code"])
    code = m["sections"]["code"]
    assert code["dirty"] is True
    assert code["changed_files"] == ["README.md", "blob.bin"]
    assert code["untracked"] == ["new.txt"]
    patch = m["blobs"][code["patch"]["id"]]
    assert b"GIT binary patch" in patch
    # the stored patch re-applies on a clean checkout of the commit
    objects = ObjectStore(tmp_path / "objects")
    save(objects, m)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(git_repo), str(clone))
    (clone / "p.diff").write_bytes(objects.get_bytes(code["patch"]["id"]))
    git(clone, "apply", "--binary", "p.diff")
    assert (clone / "blob.bin").read_bytes() == bytes(range(256))
    assert (clone / "README.md").read_text() == "changed\n"


def test_code_section_of_a_project_in_a_subfolder(git_repo: Path) -> None:
    sub = git_repo / "ml"
    (sub / ".ctui").mkdir(parents=True)
    (sub / ".ctui" / "ctui.json").write_text("{}")
    (sub / "train.py").write_text("print(1)\n")
    git(git_repo, "add", "ml/train.py")
    (git_repo / "README.md").write_text("changed outside the project folder\n")
    m = capture(sub, sections=["code"])
    code = m["sections"]["code"]
    assert code["changed_files"] == ["README.md", "ml/train.py"]
    assert code["untracked"] == []  # ml/.ctui/ is ctui's state, not code
    patch = m["blobs"][code["patch"]["id"]]
    assert b"a/README.md" in patch and b"b/ml/train.py" in patch and b".ctui" not in patch


def test_code_section_not_a_repo_is_absent(tmp_path: Path) -> None:
    code = capture(tmp_path, sections=["code"])["sections"]["code"]
    assert code["status"] == "absent"
    assert "not a git repository" in code["reason"]


def test_code_section_repo_without_commits_is_absent(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    code = capture(tmp_path, sections=["code"])["sections"]["code"]
    assert code["status"] == "absent" and "no commits" in code["reason"]


def test_parse_status_handles_renames_and_detached_head() -> None:
    raw = (
        b"# branch.oid 0123456789abcdef0123456789abcdef01234567\0# branch.head (detached)\0"
        b"2 R. N... 100644 100644 100644 aaa bbb R100 new name.py\0old name.py\0"
        b"1 .M N... 100644 100644 100644 aaa bbb x.py\0? .ctui/\0? notes.md\0"
    )
    info = parse_status(raw)
    assert info["branch"] is None
    assert info["changed"] == ["new name.py", "x.py"]
    assert info["untracked"] == ["notes.md"]


# -- env and compute -------------------------------------------------------------------------


def test_env_lists_installed_distributions_like_importlib_metadata() -> None:
    from importlib.metadata import distributions

    ours = installed_distributions()
    for dist in list(distributions())[:40]:
        name = canonical_name(dist.metadata["Name"])
        assert ours.get(name) is not None, name
    assert ours["pyyaml"] == __import__("yaml").__version__


def test_env_section_content(tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent  # the python3 on the job's PATH: ctui's venv here
    env = {
        "PATH": f"{bindir}:/usr/bin",
        "OMP_NUM_THREADS": "4",
        "HOME": "/root",
        "CTUI_IMAGE_ID": "sha256:ab",
        "CTUI_PARAM_LR": "0.1",  # params are the params section's business, not env's
    }
    section = capture(tmp_path, sections=["env"], env=env)["sections"]["env"]
    assert section["variables"] == {"OMP_NUM_THREADS": "4"}  # PATH is shell noise
    assert section["container"]["image_id"] == "sha256:ab"
    assert section["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert section["python"]["executable"] == str(bindir / "python")  # python3, canonical
    assert section["python"]["how"] == "python3 on PATH (no job named)"
    assert "typer" in section["packages"]


def test_compute_section_reports_missing_gpu_with_reason(tmp_path: Path) -> None:
    compute = capture(tmp_path, sections=["compute"])["sections"]["compute"]
    assert compute["status"] == "ok"
    assert compute["cpu"]["logical_cores"] >= 1
    assert compute["memory_total"] > 0
    gpus, reason, _driver = gpu_static_info()
    if gpus:  # runs where a GPU exists: every GPU is named, with its memory
        assert all(g.get("name") and g.get("memory_total") for g in compute["gpus"])
        assert compute["gpu_reason"] is None
    else:
        assert compute["gpus"] == [] and compute["gpu_reason"] == reason and "NVML" in reason


# -- the whole manifest ----------------------------------------------------------------------


def test_two_captures_of_an_unchanged_box_hash_equal(dvc_states: dict[str, Path]) -> None:
    a = capture(dvc_states["a"])
    b = capture(dvc_states["a"])
    assert list(a["sections"]) == list(SECTIONS)
    for name in SECTIONS:
        assert a["sections"][name]["hash"] == b["sections"][name]["hash"], name
        assert section_hash(a["sections"][name]) == a["sections"][name]["hash"]


def test_save_and_load_round_trip(dvc_states: dict[str, Path], tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    m = capture(dvc_states["a"])
    hashes = save(objects, m)
    assert hashes == {n: s["hash"] for n, s in m["sections"].items()}
    back = load(objects, hashes)
    assert back["sections"] == m["sections"]


def test_unknown_section_is_bad_input(tmp_path: Path) -> None:
    from ctui.errors import CtuiError

    with pytest.raises(CtuiError, match="unknown manifest section"):
        capture(tmp_path, sections=["bogus"])


def test_a_stale_lock_never_hides_new_data(dvc_states: dict[str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "stale"
    shutil.copytree(dvc_states["a"], repo, symlinks=True)
    before = capture(repo, sections=["data"])["sections"]["data"]["paths"]["data/raw.csv"]
    # new raw data, `dvc add`ed (and committed), the pipeline not run: dvc.lock still has the old
    (repo / "data" / "raw.csv").write_text("\n".join(str(i) for i in range(5)) + "\n")
    dvc(repo, "add", "-q", "data/raw.csv")
    data = capture(repo, sections=["data"])["sections"]["data"]
    entry = data["paths"]["data/raw.csv"]
    assert entry["hash"] != before["hash"]  # the new version is what the section says
    assert entry["lock"] == before["hash"]
    assert any("data/raw.csv: lock is stale" in s for s in data["stale"]), data["stale"]
    # edited in the workspace without `dvc add`: the workspace is what a job would read
    (repo / "data" / "raw.csv").write_text("1\n2\n")
    again = capture(repo, sections=["data"])["sections"]["data"]
    assert again["paths"]["data/raw.csv"]["hash"] not in (entry["hash"], before["hash"])
    assert again["paths"]["data/raw.csv"]["recorded"] == entry["hash"]
    assert any("its .dvc file records" in s for s in again["stale"])


def test_folder_hashes_equal_dvcs_own(dvc_states: dict[str, Path]) -> None:
    import yaml

    lock = yaml.safe_load((dvc_states["a"] / "dvc.lock").read_text())
    out = next(o for o in lock["stages"]["prepare"]["outs"] if o["path"] == "data/prepared")
    data = capture(dvc_states["a"], sections=["data"])["sections"]["data"]
    assert data["paths"]["data/prepared"]["hash"] == out["md5"]  # hashed here, as DVC does
    assert "recorded" not in data["paths"]["data/prepared"]
