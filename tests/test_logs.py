"""Log tail from the end (never reading the whole file) and follow until a run ends."""

from __future__ import annotations

import threading
import time

import pytest

from ctui.logs import follow, tail

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("content", "n", "expected"),
    [
        (b"a\nb\nc\n", 2, ["b", "c"]),
        (b"a\nb\nc", 2, ["b", "c"]),
        (b"a\nb\nc\n", 10, ["a", "b", "c"]),
        (b"", 5, []),
        (b"only", 1, ["only"]),
        (b"a\n\nb\n", 2, ["", "b"]),
        (b"x\r\ny\r\n", 1, ["y"]),
        (b"\xff\xfe bad utf8\n", 1, ["\ufffd\ufffd bad utf8"]),
    ],
)
def test_tail(tmp_path, content, n, expected):
    p = tmp_path / "log"
    p.write_bytes(content)
    assert tail(p, n) == expected


def test_tail_across_block_boundaries_and_long_lines(tmp_path):
    p = tmp_path / "log"
    rows = [f"line {i} " + "x" * (i % 300) for i in range(5000)]
    rows[-3] = "y" * 200_000  # one line longer than several blocks
    p.write_text("\n".join(rows) + "\n")
    from ctui.logtext import CUT_MARK, MAX_LINE_CHARS

    capped = rows[:-3] + ["y" * (MAX_LINE_CHARS - 1) + CUT_MARK] + rows[-2:]  # bounded lines
    assert tail(p, 7) == capped[-7:]
    assert tail(p, 1) == rows[-1:]
    assert tail(p, 0) == []


def test_tail_with_end_offset(tmp_path):
    p = tmp_path / "log"
    p.write_bytes(b"a\nb\nc\nd\n")
    assert tail(p, 2, end=4) == ["a", "b"]


def test_tail_missing_file(tmp_path):
    assert tail(tmp_path / "nope", 3) == []


def test_follow_yields_appended_lines_until_done(tmp_path):
    p = tmp_path / "log"
    p.write_bytes(b"old\n")
    done = threading.Event()

    def writer() -> None:
        with open(p, "ab") as fh:
            for i in range(50):
                fh.write(f"{i}\n".encode())
                fh.flush()
                if i % 10 == 0:
                    time.sleep(0.01)
            fh.write(b"partial")  # the last line has no newline
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    got = list(follow(p, done.is_set, offset=4, poll=0.01))
    t.join()
    assert got == [str(i) for i in range(50)] + ["partial"]


def test_follow_waits_for_the_file_and_ends_without_it(tmp_path):
    assert list(follow(tmp_path / "never", lambda: True, poll=0.01)) == []
    p = tmp_path / "later"
    calls = []

    def until() -> bool:
        calls.append(1)
        if len(calls) == 3:
            p.write_text("hello\n")
        return len(calls) > 5

    assert list(follow(p, until, poll=0.01)) == ["hello"]


# -- reading only the end, however the log is shaped -------------------------------------------


def test_tail_of_a_huge_log_without_newlines_reads_only_its_end(tmp_path):
    import tracemalloc

    from ctui.logtext import CUT_MARK, MAX_LINE_CHARS

    p = tmp_path / "log"
    with open(p, "wb") as fh:  # 500 MB, sparse: no newline anywhere
        fh.truncate(500 << 20)
        fh.seek((500 << 20) - 3)
        fh.write(b"end")
    tracemalloc.start()
    try:
        (line,) = tail(p, 5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # only its end, as much as a rendered line holds
    assert line.endswith("end") and line.startswith(CUT_MARK) and len(line) == MAX_LINE_CHARS
    assert peak < 16 << 20  # a few copies of the 4 MB window read, not of the file


def test_ctui_logs_n_on_a_500_mb_newline_less_log_uses_bounded_memory(project):
    """The real command in a fresh process: its peak RSS, not the file's size."""
    import subprocess
    import sys

    from ctui.store import Store

    Store(project.store_file).insert_run({"id": "0123456789ab", "job": "x", "status": "failed"})
    log = project.run_dir("0123456789ab") / "output.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        fh.truncate(500 << 20)
        fh.seek((500 << 20) - 4)
        fh.write(b"end\n")
    probe = (
        "import resource, subprocess, sys\n"
        "out = subprocess.run([sys.executable, '-m', 'ctui', 'logs', '0123456789ab', '-n', '5'],"
        " capture_output=True)\n"
        "print(out.returncode, out.stdout.endswith(b'end\\n'), len(out.stdout),"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=project.root, capture_output=True, text=True
    )
    code, ends, size, maxrss_kib = done.stdout.split()
    assert (code, ends) == ("0", "True"), done.stderr
    assert int(size) <= 5 << 20
    assert int(maxrss_kib) < 300 * 1024  # the 500 MB log read whole would be > 1.5 GB


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"ok\nboom\n", ["ok", "boom"]),
        (b"  1%|\r 50%|#\r100%|##\n", ["100%|##"]),  # \r progress: what the terminal showed
        (b"a\r\nb\r\n", ["a", "b"]),
        (b"pip: UV_INDEX_URL=https://u:pw@h.example/simple\n", None),
        (b"", []),
    ],
)
def test_log_tail_lines(tmp_path, content, expected):
    from ctui.logs import log_tail

    p = tmp_path / "log"
    p.write_bytes(content)
    got = log_tail(p)
    if expected is None:  # redacted by ctui.manifest.redact
        assert got == ["pip: UV_INDEX_URL=https://<redacted>@h.example/simple"]
    else:
        assert got == expected


def test_log_tail_bounds_lines_bytes_and_line_length(tmp_path):
    from ctui.logs import log_tail

    p = tmp_path / "log"
    rows = [f"row {i} " + "é" * 2000 for i in range(100)]
    p.write_text("\n".join(rows) + "\n")
    got = log_tail(p)
    assert len(got) <= 20
    assert sum(len(x.encode()) + 1 for x in got) <= 8 * 1024
    assert all(len(x) <= 500 for x in got)
    assert got[-1].startswith("row 99 ") and " … " in got[-1]
    assert log_tail(p, 3, max_bytes=1 << 20)[0].startswith("row 97 ")


def test_log_tail_keeps_only_the_end_of_a_line_cut_by_the_window(tmp_path):
    """A line that began before the bytes read may hold half a secret at the cut: only its
    end is kept, never its (cut) start."""
    from ctui.logs import log_tail

    p = tmp_path / "log"
    p.write_bytes(b"token=" + b"s" * (400 << 10) + b"tail-of-it")
    (line,) = log_tail(p)
    assert line.startswith("…") and line.endswith("tail-of-it") and len(line) <= 500


# -- as a terminal shows it (issue 18) --------------------------------------------------------


def test_tail_shows_a_progress_bar_in_its_last_state(tmp_path):
    p = tmp_path / "log"
    p.write_bytes(b"start\n  0%|   | 0/3\r 33%|#  | 1/3\r100%|###| 3/3\nabc\rX\n")
    assert tail(p, 5) == ["start", "100%|###| 3/3", "Xbc"]


def test_log_tail_of_an_80_mb_progress_line_is_its_last_state_without_colours(tmp_path):
    from ctui.logs import log_tail

    p = tmp_path / "log"
    update = b"\r\x1b[32m 42%|####      | 420/1000\x1b[0m"
    with open(p, "wb") as fh:
        fh.write(b"epoch 1\n")
        block = update * 20_000
        for _ in range((80 << 20) // len(block)):
            fh.write(block)
        fh.write(b"\rTraceback: boom\x1b[K\n")
    got = log_tail(p)
    assert got == ["Traceback: boom"]
    assert sum(len(x) for x in got) < 1000


def test_read_lines_gives_offsets_and_renders(tmp_path):
    from ctui.logs import read_lines, render_text

    p = tmp_path / "log"
    p.write_bytes(b"one\n50%\r100%\n\nlast")
    assert list(read_lines(p)) == [(0, "one"), (4, "100%"), (13, ""), (14, "last")]
    assert list(read_lines(p, 4, 13)) == [(4, "100%")]
    assert "".join(render_text(p)) == "one\n100%\n\nlast\n"
    plain = tmp_path / "plain"
    plain.write_bytes(b"a\nb\xff\n")
    assert "".join(render_text(plain)) == "a\nb\ufffd\n"


def test_follow_lines_shows_the_bar_mid_update_then_complete(tmp_path):
    from ctui.logs import follow_lines

    p = tmp_path / "log"
    p.write_bytes(b"")
    steps = [b"head\n", b"  0%|", b"\r 50%|#", b"\r100%|##\n", b"tail"]
    done = threading.Event()
    seen = []

    def until() -> bool:
        return done.is_set()

    events = follow_lines(p, until, poll=0.01)
    with open(p, "ab") as fh:
        for step in steps:
            fh.write(step)
            fh.flush()
            want = len(seen) + 1
            while len(seen) < want:
                seen.append(next(events))
        done.set()
    seen.extend(events)
    assert seen == [
        (0, "head", True),
        (5, "  0%|", False),
        (5, " 50%|#", False),
        (5, "100%|##", True),
        (26, "tail", False),
        (26, "tail", True),
    ]


def test_follow_of_a_500_mb_log_without_newlines_needs_bounded_memory(tmp_path):
    import tracemalloc

    from ctui.logtext import CUT_MARK

    p = tmp_path / "log"
    with open(p, "wb") as fh:  # sparse: 500 MB and no newline anywhere
        fh.truncate(500 << 20)
        fh.seek((500 << 20) - 3)
        fh.write(b"end")
    tracemalloc.start()
    try:
        (line,) = follow(p, lambda: True, poll=0.01)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert line.endswith(CUT_MARK) and len(line) <= 16384
    assert peak < 8 << 20, peak  # about a read's worth, not the 500 MB line


def test_one_streams_lines_are_whole_when_the_other_broke_in_mid_line(tmp_path) -> None:
    """The relay reads the two pipes apart: a stderr bar without its newline yet can be
    followed in output.log by a stdout line; `--stream err` must not glue them together."""
    from ctui.logs import stream_lines
    from ctui.logtext import LogIndex

    err1, out, err2 = b"\rbar 10%\rbar 50%", b"epoch 0 done\n", b"\rbar 100%\n"
    (tmp_path / "output.log").write_bytes(err1 + out + err2)
    (tmp_path / "output.idx").write_text(
        f"0 1.0 e\n{len(err1)} 1.1 o\n{len(err1) + len(out)} 1.2 e\n"
    )
    index = LogIndex.load(tmp_path)
    log = tmp_path / "output.log"
    assert list(stream_lines(log, index, "e")) == [(0, "bar 100%")]
    assert list(stream_lines(log, index, "o")) == [(len(err1), "epoch 0 done")]
