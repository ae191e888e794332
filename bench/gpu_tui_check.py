"""On a machine with an NVIDIA GPU: launch a real GPU job through ctui and look at it in the TUI.

    python bench/gpu_tui_check.py OUT_DIR [SECONDS]

Writes OUT_DIR/live_run.svg (the live run view with its GPU pane, mid-run),
OUT_DIR/compute.json (the compute manifest section from NVML) and prints the run's peaks and
the last resource sample. Without a GPU it still runs and shows "no NVIDIA GPU".
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORKLOAD = """
import time, sys
import torch
x = torch.randn(8192, 8192, device="cuda")
end = time.time() + float(sys.argv[1])
n = 0
while time.time() < end:
    y = x @ x
    n += 1
    if n % 20 == 0:
        torch.cuda.synchronize()
        print(f"{n} matmuls", flush=True)
print("done", n, flush=True)
"""


async def screenshot(project, run_id: str, out: Path) -> None:
    from ctui.tui.app import CtuiApp
    from ctui.tui.screens.live_run import LiveRunScreen

    app = CtuiApp(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.push_screen(LiveRunScreen(project, run_id))
        await pilot.pause(4.0)  # let the panes poll resources.jsonl a few times
        app.save_screenshot(str(out / "live_run.svg"))


def main() -> None:
    out = Path(sys.argv[1])
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 14.0
    out.mkdir(parents=True, exist_ok=True)
    from ctui.jobs.launch import launch_run
    from ctui.project import Project
    from ctui.store import open_store

    root = Path(tempfile.mkdtemp(prefix="ctui-gpu-"))
    (root / "work.py").write_text(WORKLOAD)
    (root / "ctui.toml").write_text(
        f'[jobs.gpu]\ncommand = "{sys.executable} work.py {{secs}}"\nparams = {{ secs = {secs} }}\n'
    )
    project = Project(root=root, state_dir=root / ".ctui").ensure()
    init = getattr(open_store(project), "initialise", None)  # stores that need no set-up have none
    if init is not None:
        init()
    run = launch_run(project, "gpu")
    print("launched", run["id"], flush=True)
    time.sleep(5)
    asyncio.run(screenshot(project, run["id"], out))
    store = open_store(project)
    while store.get_run(run["id"])["status"] in ("running", "queued"):
        time.sleep(0.5)
    doc = store.get_run(run["id"])
    print(json.dumps({k: doc.get(k) for k in ("status", "exit_code", "duration", "peaks")}))
    lines = (project.run_dir(run["id"]) / "resources.jsonl").read_text().splitlines()
    print("samples:", len(lines))
    print("a mid-run sample:", lines[len(lines) // 2])
    comp = subprocess.run(
        [sys.executable, "-m", "ctui", "manifest", "--section", "compute", "--json"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    (out / "compute.json").write_text(comp.stdout or comp.stderr)
    print("compute manifest:", (comp.stdout or comp.stderr)[:1500])


if __name__ == "__main__":
    main()
