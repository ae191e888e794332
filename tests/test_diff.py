"""The diff engine on its own: sections, verdicts, laziness, symmetry (hypothesis)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctui.diff import (
    compare_many,
    diff_manifests,
    diff_runs,
    flatten,
    run_view,
    unchanged,
    unchanged_line,
    verdict,
)
from ctui.format import signed, significant
from ctui.manifest import absent_section, finish_section, load, save
from ctui.objects import ObjectStore


def data_section(paths: dict[str, tuple[str, int]]) -> dict[str, Any]:
    return finish_section(
        {
            "paths": {
                p: {"hash": h, "size": s, "sources": ["dvc.lock"]} for p, (h, s) in paths.items()
            },
            "params": {},
            "sources": ["dvc.lock"],
            "problems": [],
        }
    )


def env_section(packages: dict[str, str]) -> dict[str, Any]:
    return finish_section({"python": {"version": "3.11.7"}, "packages": packages, "variables": {}})


def view(label: str, sections: dict[str, Any], params=None, metrics=None) -> dict[str, Any]:
    return {"label": label, "sections": sections, "params": params or {}, "metrics": metrics or {}}


BASE = {
    "data": data_section({"data/raw.csv": ("aa", 10), "data/prepared": ("bb.dir", 20)}),
    "env": env_section({"numpy": "2.0.0", "torch": "2.4.0"}),
}


def test_identical_views_say_identical() -> None:
    a = view("a", BASE, {"lr": 0.1}, {"acc": 0.9})
    result = diff_runs(a, a)
    assert result["verdict"] == "identical"
    assert result["identical"] is True
    statuses = {n: s["status"] for n, s in result["sections"].items()}
    assert statuses == {
        "data": "identical",
        "env": "identical",
        "code": "absent",  # not in the views at all: absent on both sides, not a difference
        "compute": "absent",
        "params": "identical",
        "metrics": "identical",
    }


def test_only_data_changed_names_the_paths() -> None:
    b_sections = dict(BASE)
    b_sections["data"] = data_section(
        {"data/raw.csv": ("cc", 12), "data/prepared": ("dd.dir", 20), "data/new.csv": ("ee", 1)}
    )
    result = diff_runs(view("a", BASE), view("b", b_sections))
    assert result["verdict"] == "only data changed: data/new.csv, data/prepared, data/raw.csv"
    data = result["sections"]["data"]
    assert data["added"] == {"data/new.csv": {"hash": "ee", "size": 1}}
    assert data["changed"]["data/raw.csv"] == {
        "old": {"hash": "aa", "size": 10},
        "new": {"hash": "cc", "size": 12},
    }
    assert result["sections"]["env"]["status"] == "identical"


def test_env_package_changes_and_verdict_with_several_sections() -> None:
    b_sections = {
        "data": data_section({"data/raw.csv": ("zz", 10), "data/prepared": ("bb.dir", 20)}),
        "env": env_section({"numpy": "2.1.0", "pandas": "2.2.0"}),
    }
    result = diff_runs(view("a", BASE, {"lr": 0.1}), view("b", b_sections, {"lr": 0.2}))
    env = result["sections"]["env"]
    assert env["changed"] == {"packages.numpy": {"old": "2.0.0", "new": "2.1.0"}}
    assert env["added"] == {"packages.pandas": "2.2.0"}
    assert env["removed"] == {"packages.torch": "2.4.0"}
    assert result["verdict"] == "data, env and params changed"
    assert result["sections"]["params"]["changed"]["lr"]["delta"] == pytest.approx(0.1)


def test_metrics_delta_and_verdict() -> None:
    result = diff_runs(
        view("a", BASE, metrics={"acc": 0.9, "loss": 1}),
        view("b", BASE, metrics={"acc": 0.8, "loss": 1}),
    )
    assert result["verdict"] == "only metrics changed: acc"
    assert result["sections"]["metrics"]["changed"]["acc"]["delta"] == pytest.approx(-0.1)


def test_metric_noise_below_the_tolerance_is_not_a_change() -> None:
    a = view("a", BASE, {"lr": 0.1}, {"acc": 0.3275, "steps": 1000})
    b = view("b", BASE, {"lr": 0.1 + 1e-14}, {"acc": 0.3275 - 5.89e-14, "steps": 1000})
    result = diff_runs(a, b)
    assert result["verdict"] == "identical" and result["identical"] is True
    assert result["sections"]["metrics"] == {
        "status": "identical",
        "added": {},
        "removed": {},
        "changed": {},
    }
    exact = diff_runs(a, b, rel_tol=0.0)
    assert exact["verdict"] == "params and metrics changed"
    assert exact["sections"]["metrics"]["changed"]["acc"]["delta"] == pytest.approx(-5.89e-14)


def test_a_real_change_is_a_change_unless_the_tolerance_swallows_it() -> None:
    a = view("a", BASE, metrics={"acc": 0.9, "loss": 0.3})
    b = view("b", BASE, metrics={"acc": 0.9009, "loss": 0.3})  # 1e-3 relative
    assert diff_runs(a, b)["verdict"] == "only metrics changed: acc"
    loose = diff_runs(a, b, rel_tol=0.01)
    assert loose["verdict"] == "identical" and loose["identical"] is True


def test_integers_are_exact_whatever_the_tolerance() -> None:
    a = view("a", BASE, {"epochs": 1000}, {"steps": 1000, "flag": True})
    b = view("b", BASE, {"epochs": 1001}, {"steps": 1000.0000001, "flag": 1})
    result = diff_runs(a, b, rel_tol=0.5)
    assert result["sections"]["params"]["changed"] == {
        "epochs": {"old": 1000, "new": 1001, "delta": 1}
    }
    # an int against a float is a float comparison; a bool is never a number
    assert list(result["sections"]["metrics"]["changed"]) == ["flag"]


def test_compare_many_honours_the_tolerance() -> None:
    views = [view(f"r{i}", BASE, metrics={"acc": 0.9 + i * 1e-14}) for i in range(3)]
    assert compare_many(views)["rows"] == []
    assert [r["key"] for r in compare_many(views, rel_tol=0.0)["rows"]] == ["acc"]


def test_unchanged_keys_and_the_line_that_counts_them() -> None:
    packages = {f"pkg{i:03d}": "1.0" for i in range(312)}
    a = view("a", {"env": env_section({**packages, "numpy": "2.1.0"})}, metrics={"acc": 0.9})
    b = view(
        "b", {"env": env_section({**packages, "numpy": "2.2.0"})}, metrics={"acc": 0.9 + 1e-12}
    )
    result = diff_runs(a, b)
    env = result["sections"]["env"]
    assert env["changed"] == {"packages.numpy": {"old": "2.1.0", "new": "2.2.0"}}
    same = unchanged("env", env, a, b)
    assert same is not None and len(same) == 314  # 312 packages, python.version, variables
    assert "packages.numpy" not in same and same["packages.pkg007"] == ("1.0", "1.0")
    assert unchanged_line("env", list(same)) == "312 packages and 2 other keys unchanged"
    # a metric within the tolerance is unchanged, with both of its values
    metrics = unchanged("metrics", result["sections"]["metrics"], a, b)
    assert metrics == {"acc": (0.9, 0.9 + 1e-12)}
    assert unchanged_line("metrics", list(metrics)) == "1 metric unchanged"
    assert unchanged_line("env", ["packages.numpy"]) == "1 package unchanged"
    assert unchanged_line("code", ["branch", "dirty"]) == "2 keys unchanged"
    assert unchanged_line("data", []) == ""
    # a section known only by its hash has no keys to list
    hashed = {"label": "h", "sections": {"env": {"hash": "x"}}}
    assert unchanged("env", env, hashed, b) is None


def test_numbers_read_with_sensible_significant_digits() -> None:
    assert significant(0.32750000000000001) == "0.3275"
    assert significant(0.9 + 1e-14) == "0.9"
    assert significant(1 / 3) == "0.333333"
    assert significant(1.5e-14) == "1.5e-14"
    assert significant(123456789.0) == "1.23457e+08"
    assert significant(123456789) == "123456789"  # integers stay integers
    assert significant(True) == "true" and significant(None) == "—"
    assert significant(float("nan")) == "nan"
    assert signed(0.0012) == "+0.0012"
    assert signed(0.901 - 0.9) == "+0.001"  # not +0.0010000000000000009
    assert signed(-5.89e-14) == "-5.89e-14"
    assert signed(0.8 - 0.9) == "-0.1"
    assert signed(3) == "+3" and signed(-2) == "-2" and signed(0) == "+0"


def test_absent_on_one_side_is_a_difference_with_its_reason() -> None:
    b_sections = dict(BASE)
    b_sections["code"] = absent_section("not a git repository")
    a_sections = dict(BASE)
    a_sections["code"] = finish_section({"commit": "abc", "branch": "main"})
    result = diff_runs(view("a", a_sections), view("b", b_sections))
    code = result["sections"]["code"]
    assert code["status"] == "absent"
    assert code["absent_in"] == ["b"]
    assert code["reason"]["b"] == "not a git repository"
    assert result["verdict"] == "only code differs: absent in b (not a git repository)"


def test_absent_on_both_sides_is_not_a_difference() -> None:
    sections = {**BASE, "code": absent_section("not a git repository")}
    result = diff_runs(view("a", sections), view("b", dict(sections)))
    assert result["sections"]["code"]["status"] == "absent"
    assert result["verdict"] == "identical"


def test_bool_and_int_are_different_values_but_int_and_float_are_not() -> None:
    a = view("a", {}, {"flag": True, "n": 1, "x": float("nan")})
    b = view("b", {}, {"flag": 1, "n": 1.0, "x": float("nan")})
    result = diff_runs(a, b, sections=["params"])
    assert list(result["sections"]["params"]["changed"]) == ["flag"]


def test_unknown_section_is_bad_input() -> None:
    from ctui.errors import CtuiError

    with pytest.raises(CtuiError, match="unknown section"):
        diff_runs(view("a", BASE), view("b", BASE), sections=["bogus"])


def test_compute_gpus_are_compared_per_gpu_and_field() -> None:
    def compute(gpus: list[dict[str, Any]]) -> dict[str, Any]:
        return finish_section({"host": "box", "gpus": gpus, "gpu_reason": None})

    a = compute([{"index": 0, "name": "A100", "memory_total": 80}])
    b = compute([{"index": 0, "name": "H100", "memory_total": 80}, {"index": 1, "name": "H100"}])
    result = diff_manifests({"sections": {"compute": a}}, {"sections": {"compute": b}})
    compute_diff = result["sections"]["compute"]
    assert compute_diff["changed"] == {"gpus[0].name": {"old": "A100", "new": "H100"}}
    assert compute_diff["added"] == {"gpus[1].index": 1, "gpus[1].name": "H100"}
    assert "params" not in result["sections"]


def test_run_view_loads_only_sections_whose_hashes_differ(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    hashes_a = save(objects, {"sections": BASE})
    b_sections = {**BASE, "env": env_section({"numpy": "9.9"})}
    hashes_b = save(objects, {"sections": b_sections})
    assert hashes_a["data"] == hashes_b["data"] == BASE["data"]["hash"]
    # the identical data section is gone from the store: a diff must not need to read it
    objects.path(hashes_a["data"]).unlink()
    doc_a = {"id": "run-a", "manifest": hashes_a, "params": {}, "metrics": {}}
    doc_b = {"id": "run-b", "manifest": hashes_b, "params": {}, "metrics": {}}
    result = diff_runs(run_view(doc_a), run_view(doc_b), objects=objects)
    assert result["sections"]["data"]["status"] == "identical"
    assert result["verdict"].startswith("only env changed: packages.numpy")
    assert result["sections"]["code"]["reason"]["a"] == "not recorded for this run"


def test_save_load_round_trip_stores_identical_sections_once(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    m = {"sections": BASE, "blobs": {}}
    first = save(objects, m)
    count = len(objects.all_ids())
    second = save(objects, m)
    assert first == second
    assert len(objects.all_ids()) == count == 2
    loaded = load(objects, first)
    assert loaded["sections"] == BASE


def test_compare_many_lists_only_differing_rows() -> None:
    views = [
        view("r1", BASE, {"lr": 0.1, "epochs": 3}, {"acc": 0.9}),
        view("r2", BASE, {"lr": 0.2, "epochs": 3}, {"acc": 0.9}),
        view("r3", {**BASE, "env": env_section({})}, {"lr": 0.1, "epochs": 3}, {"acc": 0.95}),
    ]
    table = compare_many(views)
    assert table["labels"] == ["r1", "r2", "r3"]
    keys = {(r["kind"], r["key"]): r["values"] for r in table["rows"]}
    assert keys[("param", "lr")] == [0.1, 0.2, 0.1]
    assert keys[("metric", "acc")] == [0.9, 0.9, 0.95]
    assert ("param", "epochs") not in keys
    assert ("section", "env") in keys and ("section", "data") not in keys


def test_verdict_lists_at_most_four_keys() -> None:
    section = {
        "status": "changed",
        "added": {f"p{i}": 1 for i in range(6)},
        "removed": {},
        "changed": {},
    }
    assert verdict({"data": section}) == "only data changed: p0, p1, p2, p3 (+2 more)"


def test_flatten_data_keys_are_paths() -> None:
    flat = flatten("data", BASE["data"])
    assert set(flat) == {"data/raw.csv", "data/prepared"}


# -- properties ------------------------------------------------------------------------------

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.text(max_size=5),
)
names = st.text(alphabet="abcxyz_/.", min_size=1, max_size=4)
content = st.dictionaries(
    names, st.one_of(leaf, st.dictionaries(names, leaf, max_size=3)), max_size=5
)


@st.composite
def views(draw: Any) -> dict[str, Any]:
    sections = {}
    for name in ("data", "code", "env", "compute"):
        kind = draw(st.sampled_from(["ok", "absent", "missing"]))
        if kind == "ok":
            body = draw(content)
            if name == "data":
                body = {
                    "paths": draw(
                        st.dictionaries(
                            names,
                            st.dictionaries(st.sampled_from(["hash", "size"]), leaf),
                            max_size=4,
                        )
                    )
                }
            sections[name] = finish_section(body)
        elif kind == "absent":
            sections[name] = absent_section(draw(st.sampled_from(["no git", "no dvc"])))
    return {
        "label": draw(st.sampled_from(["a", "b"])),
        "sections": sections,
        "params": draw(st.dictionaries(names, leaf, max_size=4)),
        "metrics": draw(st.dictionaries(names, st.floats(allow_nan=False, width=32), max_size=4)),
    }


def _same_number(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y


@settings(max_examples=80, deadline=None)
@given(views())
def test_property_diff_of_a_view_with_itself_is_identical(v: dict[str, Any]) -> None:
    result = diff_runs(v, v)
    assert result["identical"] is True
    assert result["verdict"] == "identical"
    for s in result["sections"].values():
        assert s["added"] == s["removed"] == s["changed"] == {}


@settings(max_examples=100, deadline=None)
@given(views(), views())
def test_property_diff_mirrors_when_swapped(a: dict[str, Any], b: dict[str, Any]) -> None:
    ab, ba = diff_runs(a, b), diff_runs(b, a)
    assert ab["changed"] == ba["changed"]
    assert ab["identical"] == ba["identical"]
    for name, s in ab["sections"].items():
        r = ba["sections"][name]
        assert s["status"] == r["status"]
        assert s["added"].keys() == r["removed"].keys()
        assert s["removed"].keys() == r["added"].keys()
        assert s["changed"].keys() == r["changed"].keys()
        for key, item in s["changed"].items():
            back = r["changed"][key]
            assert _same_number(item["old"], back["new"]) and _same_number(item["new"], back["old"])
            if "delta" in item:
                assert _same_number(item["delta"], -back["delta"])
        if s["status"] == "absent":
            assert sorted({"a": "b", "b": "a"}[x] for x in s["absent_in"]) == sorted(r["absent_in"])


def test_compute_diff_against_a_section_recorded_on_an_h100() -> None:
    """The compute section below was captured through NVML on a real H100 machine."""
    import orjson

    from ctui.manifest import capture

    golden = Path(__file__).parent / "golden" / "manifest_compute_h100.json"
    h100 = finish_section(orjson.loads(golden.read_bytes()))
    here = capture(Path.cwd(), sections=["compute"])["sections"]["compute"]
    result = diff_manifests({"sections": {"compute": here}}, {"sections": {"compute": h100}})
    compute = result["sections"]["compute"]
    assert compute["status"] == "changed"
    if not here["gpus"]:
        assert compute["added"]["gpus[0].name"] == "NVIDIA H100 80GB HBM3"
        assert compute["added"]["gpus[0].memory_total"] == 85520809984
        assert compute["changed"]["gpu_reason"]["new"] is None
    assert result["verdict"].startswith("only compute changed")


def test_same_inputs_different_outputs_is_named_as_such() -> None:
    def view(model: str, raw: str, acc: float) -> dict:
        data = {
            "status": "ok",
            "paths": {
                "data/raw.csv": {"hash": raw, "role": "input", "sources": ["data/raw.csv.dvc"]},
                "model.pkl": {"hash": model, "role": "output", "sources": ["dvc.lock:t:out"]},
            },
        }
        return {"label": model, "sections": {"data": data}, "metrics": {"acc": acc}}

    nondeterministic = diff_runs(view("m1", "r1", 0.9), view("m2", "r1", 0.8))
    assert nondeterministic["verdict"] == "same inputs, different outputs and metrics: model.pkl"
    new_data = diff_runs(view("m1", "r1", 0.9), view("m2", "r2", 0.9))
    assert new_data["verdict"] == "only data changed: data/raw.csv, model.pkl"
