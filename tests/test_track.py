"""The job-side metrics client: JSONL into $CTUI_RUN_DIR, a no-op with one warning outside."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from ctui import track


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CTUI_RUN_DIR", str(tmp_path))
    return tmp_path


def test_metrics_params_artifacts_are_appended(run_dir):
    track.log_params({"lr": 0.1}, epochs=3)
    track.log_metric("loss", 0.5, step=1)
    track.log_metrics({"loss": 0.25, "acc": True}, step=2)
    (run_dir / "model.bin").write_bytes(b"1234")
    track.log_artifact(run_dir / "model.bin")

    params = lines(run_dir / "params.jsonl")
    assert [(p["name"], p["value"]) for p in params] == [("lr", 0.1), ("epochs", 3)]
    metrics = lines(run_dir / "metrics.jsonl")
    assert [(m["name"], m["value"], m["step"]) for m in metrics] == [
        ("loss", 0.5, 1),
        ("loss", 0.25, 2),
        ("acc", 1, 2),
    ]
    assert all(isinstance(m["time"], float) for m in metrics)
    (artifact,) = lines(run_dir / "artifacts.jsonl")
    assert artifact["path"] == str(run_dir / "model.bin") and artifact["size"] == 4


def test_numpy_like_scalars_and_non_numbers(run_dir):
    class Scalar:
        def __float__(self) -> float:
            return 0.75

    track.log_metric("x", Scalar())  # type: ignore[arg-type]
    track.log_metric("nan", float("nan"))
    assert [(m["name"], m["value"]) for m in lines(run_dir / "metrics.jsonl")] == [
        ("x", 0.75),
        ("nan", None),
    ]
    with pytest.raises(TypeError, match="not a number"):
        track.log_metric("bad", "high")  # type: ignore[arg-type]


def test_outside_ctui_it_is_a_no_op_that_warns_once(tmp_path, monkeypatch):
    monkeypatch.delenv("CTUI_RUN_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(track, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        track.log_metric("a", 1)
        track.log_params(x=1)
        track.log_artifact("nothing")
    assert len(caught) == 1
    assert "not running under ctui" in str(caught[0].message)
    assert list(tmp_path.iterdir()) == []


def test_imports_only_the_standard_library():
    code = (
        "import sys; before = set(sys.modules); from ctui import track; "
        "new = set(sys.modules) - before; "
        "third = sorted(m for m in new if m.split('.')[0] not in sys.stdlib_module_names "
        "and m.split('.')[0] != 'ctui'); print(third)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
