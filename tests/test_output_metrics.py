"""Metrics read from a job's output: the built-in shapes on realistic lines, noise that must
not become metrics, a job's own patterns, bad patterns in the config."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from cli_helpers import ctui, one_line_error
from jobs_helpers import write_config

from ctui.errors import ConfigError, ExitCode
from ctui.jobs.output import PER_SHAPE, LineFeed
from ctui.output_metrics import OutputMetricsConfig, finish_fields, parse_output_metrics
from ctui.output_parser import OutputParser


def parse(text: str | bytes, config: OutputMetricsConfig | None = None, chunk: int = 0):
    """The points (name, value, step) a parser reads from `text`, fed in chunks of `chunk`
    bytes (0: at once), and the parser."""
    import tempfile

    data = text.encode() if isinstance(text, str) else text
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "output_metrics.jsonl"
        p = OutputParser(config or OutputMetricsConfig(), path)
        feed = LineFeed(p)
        step = chunk or len(data) or 1
        for i in range(0, len(data), step):
            feed.feed(data[i : i + step], "o", 100.0)
        feed.close()
        recs = [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []
    assert all(r["src"] == "output" and isinstance(r["time"], float) for r in recs)
    return [(r["name"], r["value"], r["step"]) for r in recs], p


def test_key_value_pairs_with_epoch_lines():
    points, p = parse("Epoch 1\nloss=0.52, acc=0.9\nEpoch 2\nloss=0.4 acc=0.95 lr=1e-4\n")
    assert points == [
        ("loss", 0.52, 1),
        ("acc", 0.9, 1),
        ("loss", 0.4, 2),
        ("acc", 0.95, 2),
        ("lr", 0.0001, 2),
    ]
    assert p.ignored == 0 and p.last == {"loss": 0.4, "acc": 0.95, "lr": 0.0001}


def test_hf_trainer_dicts_and_json_lines():
    text = (
        "{'loss': 0.52, 'learning_rate': 4e-05, 'epoch': 0.5}\n"
        "{'eval_loss': 0.61, 'eval_runtime': 1.2, 'epoch': 1.0}\n"
        '{"loss": 0.4, "step": 20}\n'
    )
    points, _ = parse(text)
    assert points == [
        ("loss", 0.52, None),
        ("learning_rate", 4e-05, None),
        ("epoch", 0.5, None),
        ("eval_loss", 0.61, None),
        ("eval_runtime", 1.2, None),
        ("epoch", 1.0, None),
        ("loss", 0.4, 20),
    ]


def test_step_shapes():
    text = (
        "Epoch [1/10], Step [100/600], Loss: 0.2345\n"  # the PyTorch tutorial's print
        "step 5/100 loss=0.3\n"
        "loss=0.2 step=7\n"  # the step on the line holds for the line
        "[3/10] err=0.1\n"
        "epoch=4 val_acc=0.8\n"
        "val_acc=0.81\n"  # the step of the lines before
    )
    points, _ = parse(text)
    assert points == [
        ("Loss", 0.2345, 100),
        ("loss", 0.3, 5),
        ("loss", 0.2, 7),
        ("err", 0.1, 3),
        ("val_acc", 0.8, 4),
        ("val_acc", 0.81, 4),
    ]


def test_keras_and_lightning_progress_lines():
    text = (
        "Epoch 1/10\n"
        "1875/1875 [==============================] - 3s 1ms/step - loss: 0.2970 - accuracy: "
        "0.9140\n"
        "Epoch 0:  45%|████▌     | 45/100 [00:01<00:02, 40.00it/s, v_num=0]\r"
        "Epoch 0: 100%|██████████| 100/100 [00:03<00:00, 40.00it/s, v_num=0, train_loss=0.123]\n"
    )
    points, _ = parse(text)
    # the bar counts only in its final state (what a terminal shows), v_num is no metric
    assert points == [("loss", 0.297, 1), ("accuracy", 0.914, 1), ("train_loss", 0.123, 0)]


NOISE = """\
2024-01-02 12:30:45,123 - INFO - root: starting
[2024-01-02 12:30:45] INFO: version 1.2.3, torch==2.1.0 python 3.10.12
I1202 12:30:45.123456  1234 train.py:42] loading data
/usr/lib/python3/site.py:12: UserWarning: something
Namespace(batch_size=64, lr=0.01)
Downloading: 100%|##########| 1.2k/1.2k [00:00<00:00, 3.4MB/s]
level=info ts=2024-01-02T12:30:45Z caller=main.go:42 msg="ok" pid=1234
Elapsed: 00:01:23 ETA: 3.2s mem=12.3GB port: 8080 http://localhost:8080/x
{'model': 'bert', 'lr': 0.01}
 45%|████▌     | 45/100 [00:01<00:02, 40.00it/s]
python train.py --lr=0.1 --epochs=3
acc=95% time=12.3s version=2.1.0 date=2024-01-02 at=12:30 id=0x1f
[rank0]: local_rank=0 world_size=2 seed=42
  File "train.py", line 42, in main
Step took 3.2s
"""


def test_noise_never_becomes_metrics():
    points, p = parse(NOISE)
    assert points == []
    assert p.ignored == 0


def test_noise_in_chunks_of_any_size_reads_the_same():
    text = NOISE + "Epoch 2\nloss=0.5\n" + NOISE + "{'loss': 0.25}\n"
    whole, _ = parse(text)
    assert whole == [("loss", 0.5, 2), ("loss", 0.25, 2)]
    for size in (1, 7, 64):
        assert parse(text, chunk=size)[0] == whole


def test_names_that_say_credential_never_become_metrics():
    points, _ = parse("api_key=123456 db_password=42 max_tokens=512 loss=0.5\n")
    assert points == [("max_tokens", 512, None), ("loss", 0.5, None)]


def test_not_numbers_are_ignored_and_counted():
    points, p = parse("loss=nan acc=0.5\nloss=inf\n{'loss': nan, 'acc': 0.6}\n")
    assert points == [("acc", 0.5, None), ("acc", 0.6, None)]
    assert p.ignored == 3


def test_invalid_utf8_and_an_unterminated_last_line():
    points, _ = parse(b"bad \xff\xfe bytes loss=0.5\nacc=0.7")
    assert points == [("loss", 0.5, None), ("acc", 0.7, None)]


def test_a_plain_chunk_between_two_halves_of_a_line():
    # the chunk with no shape in it is skipped cheaply; the line around it is still read whole
    data = [b"warming up lo", b"ss=0.5\n" + b"plain text\n" * 50 + b"more ", b"acc=0.9\n"]
    cfg = OutputMetricsConfig()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = OutputParser(cfg, Path(tmp) / "m.jsonl")
        feed = LineFeed(p)
        for d in data:
            feed.feed(d, "o", 1.0)
        feed.close()
    assert p.last == {"loss": 0.5, "acc": 0.9}


def test_streams_are_assembled_apart():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = OutputParser(OutputMetricsConfig(), Path(tmp) / "m.jsonl")
        feed = LineFeed(p)
        feed.feed(b"loss=", "o", 1.0)
        feed.feed(b"warning: x\n", "e", 1.0)
        feed.feed(b"0.5\n", "o", 1.0)
        feed.close()
    assert p.last == {"loss": 0.5}


def test_a_flood_is_thinned_but_keeps_rare_lines_and_exact_last_values():
    flood = [f"step {i} loss={i / 1000:.3f}\n" for i in range(5000)]
    mid = "Epoch 7 val_acc=0.93\n"
    points, p = parse("".join(flood[:2500]) + mid + "".join(flood[2500:]))
    losses = [(v, s) for n, v, s in points if n == "loss"]
    # one period: the first lines of the shape and its latest, in order, steps their own
    assert len(losses) == PER_SHAPE
    assert losses[: PER_SHAPE - 1] == [(i / 1000, i) for i in range(PER_SHAPE - 1)]
    assert losses[-1] == (4.999, 4999)
    assert ("val_acc", 0.93, 7) in points  # a line of its own shape is always read
    assert p.last == {"loss": 4.999, "val_acc": 0.93}


def test_lines_of_later_periods_are_read_again():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = OutputParser(OutputMetricsConfig(), Path(tmp) / "m.jsonl")
        feed = LineFeed(p)
        for t in range(10):  # a line a second: every one is read
            feed.feed(f"loss={t}\n".encode(), "o", 100.0 + t)
        feed.close()
        values = [orjson.loads(x)["value"] for x in (Path(tmp) / "m.jsonl").read_bytes().split()]
    assert values == list(range(10))


# -- the job's own patterns -------------------------------------------------------------------


def cfg(raw: object) -> OutputMetricsConfig:
    return parse_output_metrics(raw, Path("ctui.toml"), "jobs.train")


def test_own_patterns_named_by_their_lead_by_a_group_or_by_the_table():
    config = cfg(
        [r"val_acc=(?P<value>\S+)", r"(?P<name>\w+) is (?P<value>[\d.]+) at (?P<step>\d+)"]
    )
    text = "Epoch 3\nval_acc=0.91 loss=0.1\nthroughput is 120.5 at 7\nval_acc=high\n"
    points, p = parse(text, config)
    # the built-in shapes are off (loss=0.1 is not read), the step shapes still count
    assert points == [("val_acc", 0.91, 3), ("throughput", 120.5, 7)]
    assert p.ignored == 1  # val_acc=high
    table = cfg({"accuracy": r"acc (?P<value>\S+)"})
    assert parse("acc 0.5\n", table)[0] == [("accuracy", 0.5, None)]


def test_config_values():
    assert cfg(None) == OutputMetricsConfig()
    assert cfg(True) == OutputMetricsConfig()
    assert cfg(False).enabled is False
    own = cfg(["loss=(?P<value>[0-9.]+)"])
    assert own.patterns == [("loss", "loss=(?P<value>[0-9.]+)")]
    assert OutputMetricsConfig.from_options(own.to_options()) == own


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (["val_acc=(?P<value>\\S+"], ["'val_acc=(?P<value>\\\\S+'", "not a valid regex"]),
        (["val_acc=(\\S+)"], ["no (?P<value>...) group"]),
        (["(?P<value>\\d+) ms"], ["names no metric"]),
        (3, ["expected true, false"]),
        ([3], ["expected a regex"]),
    ],
)
def test_bad_patterns_are_config_errors_naming_key_and_pattern(raw, words):
    with pytest.raises(ConfigError) as err:
        cfg(raw)
    assert "jobs.train.output_metrics" in err.value.message
    for word in words:
        assert word in err.value.message


def test_a_bad_pattern_stops_ctui_run_with_exit_2(project):
    write_config(
        project.root,
        "[jobs.train]\ncommand = \"echo hi\"\noutput_metrics = ['val_acc=(?P<value>\\S+']\n",
    )
    out = ctui(project.root, "run", "train")
    first = one_line_error(out, ExitCode.BAD_INPUT, "jobs.train.output_metrics", "val_acc=")
    assert "not a valid regex" in first
    assert ctui(project.root, "runs", "--json").stdout.strip() in ("[]", "")


def test_finish_fields(tmp_path):
    (tmp_path / "output_metrics.jsonl").write_bytes(
        b'{"name":"loss","value":0.5,"step":1,"time":1.0,"src":"output"}\n'
        b'{"name":"loss","value":0.25,"step":2,"time":2.0,"src":"output"}\n{"name":"lo'
    )
    assert finish_fields(tmp_path, {}) == {"metrics": {"loss": 0.25}, "metrics_from": "output"}
    assert finish_fields(tmp_path, {"acc": 1.0}, ignored=2) == {"output_metrics_ignored": 2}
    assert finish_fields(tmp_path / "none", {}) == {}
