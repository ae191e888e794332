"""Regenerate the README's screenshots of the main screens (SVG → PNG with cairosvg).

    uv run python screenshots/make_screenshots.py            # from a fresh `ctui demo`
    uv run python screenshots/make_screenshots.py --synthetic  # the fixed test store (fast)

PNGs render best with Fira Code installed (Debian: `apt-get install fonts-firacode`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ctui.project import Project  # noqa: E402

Step = Callable[[Any], Awaitable[None]]


async def _settle(pilot: Any, seconds: float = 0.6) -> None:
    await pilot.pause()
    await asyncio.sleep(seconds)  # let workers (charts, manifest, diff) report back
    await pilot.pause()


def _keys(*keys: str, settle: float = 0.6) -> Step:
    async def step(pilot: Any) -> None:
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await _settle(pilot, settle)

    return step


async def _overlay(pilot: Any) -> None:
    """Mark four of the demo's finished runs (#1, which #3 reproduces, and the failed #4 left
    out; the table's order of runs launched together varies), press p: acc overlaid."""
    from ctui.tui.widgets.runs_table import RunsTable

    table = pilot.app.screen.query_one(RunsTable)
    table.marked.update(r["id"] for r in table.rows if r.get("seq") in (2, 3, 5, 6))
    await _keys("p", settle=1.5)(pilot)


SHOTS: list[tuple[str, tuple[int, int], Step]] = [
    ("runs", (120, 32), _keys()),
    ("runs-80x24", (80, 24), _keys()),
    ("detail-overview", (120, 32), _keys("down", "enter")),
    ("detail-metrics", (120, 32), _keys("down", "enter", "2", settle=1.0)),
    ("detail-manifest", (120, 32), _keys("down", "enter", "3", settle=1.0)),
    ("compare-plot", (120, 32), _overlay),
    ("diff", (120, 32), _keys("space", "space", "d", settle=2.0)),
    ("live", (120, 32), _keys("l", settle=1.5)),
    ("launch", (120, 32), _keys("n", settle=1.0)),
    ("help", (100, 32), _keys("question_mark")),
]


async def shoot(
    project: Project,
    name: str,
    size: tuple[int, int],
    step: Step,
    clock: Callable[[], float] | None,
) -> Path:
    from ctui.tui.app import CtuiApp

    app = CtuiApp(project, clock=clock, poll_interval=1000, keymap={})
    svg = HERE / f"{name}.svg"
    try:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await step(pilot)
            app.save_screenshot(filename=svg.name, path=str(HERE))
    except Exception as exc:  # noqa: BLE001 - a failure while closing must not lose the shot
        if not svg.exists():
            raise
        print(f"warning: {name}: the app failed while closing: {exc!r}", file=sys.stderr)
    return svg


def to_png(svg: Path) -> Path:
    import cairosvg

    png = svg.with_suffix(".png")
    cairosvg.svg2png(url=str(svg), write_to=str(png), output_width=1400)
    svg.unlink()
    return png


def synthetic_project(root: Path) -> tuple[Project, Callable[[], float]]:
    from test_tui_fixtures import FROZEN_NOW, make_tui_project

    return make_tui_project(root), lambda: FROZEN_NOW


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--synthetic", action="store_true", help="use the fixed test store")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ctui-shots-") as tmp:
        clock: Callable[[], float] | None = None
        if args.synthetic:
            project, clock = synthetic_project(Path(tmp) / "demo")
        else:
            from ctui.demo import build_demo

            t = time.monotonic()
            project = build_demo(Path(tmp) / "demo")
            print(f"demo built in {time.monotonic() - t:.0f} s")
        for name, size, step in SHOTS:
            png = to_png(asyncio.run(shoot(project, name, size, step, clock)))
            print(f"{png.relative_to(ROOT)}  {png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
