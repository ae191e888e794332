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
    assert tail(p, 7) == rows[-7:]
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
