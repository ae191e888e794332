"""ctui.logtext: log lines as a terminal shows them, ranks, output.idx."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from ctui.logtext import (
    CUT_MARK,
    MAX_LINE_CHARS,
    MAX_PENDING_CHARS,
    LineAssembler,
    LogIndex,
    rank_of,
    render_line,
)

TQDM_SCRIPT = """
import sys, time
from tqdm import tqdm
for epoch in range(2):
    for _ in tqdm(range(40), desc=f"epoch {epoch}", file=sys.stdout, mininterval=0,
                  miniters=1, ncols=70, ascii=True):
        pass
    print(f"epoch {epoch} done", flush=True)
"""


def _tqdm_output() -> bytes:
    proc = subprocess.run(
        [sys.executable, "-c", TQDM_SCRIPT], capture_output=True, check=True, timeout=120
    )
    return proc.stdout


# -- render_line ----------------------------------------------------------------------------


def test_carriage_return_overwrites_cell_by_cell() -> None:
    assert render_line("abc\rX") == "Xbc"
    assert render_line("abc\r") == "abc"  # a trailing \r shows the line as it was
    assert render_line("50%\r100%") == "100%"
    assert render_line("\r\r") == ""


def test_plain_lines_come_back_unchanged() -> None:
    line = "step 10 loss=0.25 — ünïcode ✓"
    assert render_line(line) is line


def test_backspace_steps_back_one_cell() -> None:
    assert render_line("abc\b\bZ") == "aZc"
    assert render_line("\b\bab") == "ab"  # never before column 0
    assert render_line("ab\b") == "ab"


def test_erase_sequences() -> None:
    assert render_line("abcdef\r12\x1b[K") == "12"
    assert render_line("abcdef\r12\x1b[0K") == "12"
    assert render_line("abcdef\x1b[2K\rnew") == "new"
    assert render_line("abcdef\x1b[3D\x1b[1K!") == "   !ef"  # erased to the cursor


def test_cursor_movement_and_other_escapes_are_stripped() -> None:
    # tqdm with position>0 / rich progress move the cursor up and hide it
    assert render_line("\x1b[1Abar\x1b[1B\x1b[?25l") == "bar"
    assert render_line("\x1b]0;title\x07text") == "text"
    assert render_line("\x1b(Bcharset, lone esc\x1b") == "charset, lone esc"
    assert render_line("ab\x1b[5Gx") == "ab  x"  # column 5


def test_colours_are_kept() -> None:
    red = "\x1b[31mred\x1b[0m plain"
    assert render_line(red) == red
    bar = "\x1b[32m 50%\x1b[0m\r\x1b[32m100%\x1b[0m"
    assert render_line(bar) == "\x1b[0m\x1b[32m100%\x1b[0m"
    from rich.text import Text

    assert Text.from_ansi(render_line(bar)).plain == "100%"


def test_a_rendered_line_is_bounded() -> None:
    long = "x" * (MAX_LINE_CHARS * 3)
    assert len(render_line(long)) == MAX_LINE_CHARS
    assert render_line(long).endswith(CUT_MARK)
    coloured = "\x1b[31m" + long
    out = render_line(coloured)
    assert out.startswith("\x1b[31mxxx") and out.endswith(CUT_MARK)
    assert len(out) <= MAX_LINE_CHARS + 16


def test_real_tqdm_output_shows_each_bar_at_its_end() -> None:
    raw = _tqdm_output()
    assert raw.count(b"\r") > 40  # a real bar: one \r per update
    asm = LineAssembler()
    lines = asm.feed(raw) + asm.flush()
    assert [line for line in lines if "done" in line] == ["epoch 0 done", "epoch 1 done"]
    bars = [line for line in lines if "done" not in line]
    assert len(bars) == 2
    for epoch, bar in enumerate(bars):
        assert bar.startswith(f"epoch {epoch}: 100%|")
        assert "40/40" in bar
        assert "\r" not in bar and "0/40" not in bar.replace("40/40", "")


def test_real_tqdm_mid_update_is_the_partial_line() -> None:
    raw = _tqdm_output()
    first_done = raw.index(b"epoch 0 done")
    cut = raw.index(b"\r", raw.index(b"20/40")) + 1  # just after the 20th update was drawn
    assert cut < first_done
    asm = LineAssembler()
    assert asm.feed(raw[:cut]) == []
    partial = asm.partial()
    assert partial.startswith("epoch 0:  50%|") and "20/40" in partial
    lines = asm.feed(raw[cut:])
    assert lines[0].startswith("epoch 0: 100%|")


# -- LineAssembler --------------------------------------------------------------------------


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    asm = LineAssembler()
    assert asm.feed(b"ok \xff\xfe bad\n") == ["ok \ufffd\ufffd bad"]


def test_multibyte_char_split_across_feeds() -> None:
    data = "héllo → wörld\n".encode()
    for cut in range(1, len(data)):
        asm = LineAssembler()
        lines = asm.feed(data[:cut]) + asm.feed(data[cut:])
        assert lines == ["héllo → wörld"], cut


def test_escape_split_across_feeds_is_not_shown_half() -> None:
    asm = LineAssembler()
    asm.feed(b"loss 1\x1b[3")
    assert asm.partial() == "loss 1"
    assert asm.feed(b"1mred\x1b[0m\n") == ["loss 1\x1b[31mred\x1b[0m"]


def test_lines_across_feeds_and_flush() -> None:
    asm = LineAssembler()
    assert asm.feed(b"a\nb") == ["a"]
    assert asm.partial() == "b"
    assert asm.feed(b"c\r\nd\re") == ["bc"]
    assert asm.partial() == "e"
    assert asm.flush() == ["e"]
    assert asm.partial() == ""


def test_cursor_position_survives_collapsing() -> None:
    # collapsing at \r keeps the screen and the cursor: later text overwrites from col 0
    asm = LineAssembler()
    asm.feed(("a" * 5000 + "\r").encode())
    asm.feed(b"XY")
    assert asm.partial() == "XY" + "a" * 4998
    asm.feed(b"\x08Z")
    assert asm.flush() == ["XZ" + "a" * 4998]


def _peak_feeding(chunk: bytes, count: int) -> tuple[int, LineAssembler]:
    asm = LineAssembler()
    tracemalloc.start()
    try:
        for _ in range(count):
            assert asm.feed(chunk) == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, asm


MIB = 1 << 20


def test_500_mb_without_newline_needs_bounded_memory() -> None:
    peak, asm = _peak_feeding(b"x" * MIB, 500)  # 500 MiB, one line, no \r
    assert peak < 8 * MIB, peak  # a few chunks' worth, not the 500 MiB line
    out = asm.partial()
    assert out.startswith("xxx") and out.endswith(CUT_MARK)
    assert len(out) <= MAX_LINE_CHARS
    assert len(asm._pending) <= MAX_PENDING_CHARS
    line = asm.flush()[0]
    assert line.endswith(CUT_MARK)


def test_500_mb_progress_bar_without_newline_needs_bounded_memory() -> None:
    # a bar redrawn ~10k times per MiB, never ending its line
    update = b"\r 42%|####      | 420/1000 [00:10<00:14, 41.9it/s]"
    chunk = update * (MIB // len(update))
    peak, asm = _peak_feeding(chunk, 500)
    assert peak < 8 * MIB, peak
    assert asm.partial() == update[1:].decode()
    assert len(asm._pending) < 1024


# -- rank_of --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "rank"),
    [
        ("[default0]:loss=1.0", 0),
        ("[default1]:epoch 2", 1),
        ("[trainer3]:x", 3),
        ("[rank2]: hello", 2),
        ("[1]:x", 1),
        ("[1,0]<stdout>:step 1", 0),
        ("[1,7]<stderr>:warn", 7),
        ("0: srun line", 0),
        ("12: srun line", 12),
        ("\x1b[32m[default1]:\x1b[0mcoloured", 1),
        ("plain line", None),
        ("[INFO] started", None),
        ("10:32:01 clock", None),
        ("", None),
    ],
)
def test_rank_of(line: str, rank: int | None) -> None:
    assert rank_of(line) == rank


# -- LogIndex -------------------------------------------------------------------------------


def test_log_index_missing_is_empty(tmp_path: Path) -> None:
    idx = LogIndex.load(tmp_path)
    assert len(idx) == 0
    assert idx.at(0) == (None, None)
    assert idx.offset_at(0.0) is None
    assert idx.streams == set()


def test_log_index_lookups_and_refresh(tmp_path: Path) -> None:
    path = tmp_path / "output.idx"
    path.write_text("0 100.000 o\n10 100.500 e\n25 101.000 o\n40 10")  # last line half-written
    idx = LogIndex.load(tmp_path)
    assert len(idx) == 3
    assert idx.at(0) == (100.0, "o")
    assert idx.at(9) == (100.0, "o")
    assert idx.at(10) == (100.5, "e")
    assert idx.at(10_000) == (101.0, "o")
    assert idx.offset_at(100.2) == 10
    assert idx.offset_at(101.0) == 25
    assert idx.offset_at(200.0) is None
    assert idx.streams == {"o", "e"}
    with path.open("a") as fh:
        fh.write("2.000 c\ngarbage\n60 103.000 o\n")
    assert idx.refresh() == 2
    assert idx.at(45) == (102.0, "c")
    assert idx.at(60) == (103.0, "o")
    assert idx.streams == {"o", "e", "c"}
    assert idx.refresh() == 0
