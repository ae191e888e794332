"""Follow an append-only JSONL file (resources.jsonl, metrics.jsonl) cheaply.

The first read takes only the last lines (read from the end); later reads take only the
bytes appended since. No Textual here: it runs in the live view's polling thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ctui.logs import raw_tail
from ctui.tui.run_files import parse_jsonl


class JsonlTail:
    def __init__(self, path: Path, history: int = 200) -> None:
        self.path = Path(path)
        self.history = history
        self.offset: int | None = None  # None until the first read
        self._pending = b""

    def read_new(self) -> list[dict[str, Any]]:
        """Records appended since the last call (the first call: the last `history` ones)."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if self.offset is None or size < self.offset:  # first read, or the file was replaced
            self.offset = size
            self._pending = b""
            return parse_jsonl(raw_tail(self.path, self.history, end=size))
        if size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        self.offset += len(data)
        data = self._pending + data
        *lines, self._pending = data.split(b"\n")  # a half-written last line waits
        return parse_jsonl(lines[-self.history :])
