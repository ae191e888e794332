"""The ctui Textual application: screens, app-wide bindings, the user keymap, the palette."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from ctui.tui.commands import ScreenActions
from ctui.tui.data import Clock

if TYPE_CHECKING:
    from textual.screen import Screen

    from ctui.project import Project

KEYMAP_FILE = Path("~/.config/ctui/keymap.toml")


def load_keymap(project: Project) -> tuple[dict[str, str], list[str]]:
    """Binding id → keys, from `~/.config/ctui/keymap.toml` then `[tui.keymap]` in ctui.toml.

    The project's table wins over the user's file. Problems come back as messages (shown as
    notifications), never as a crash: a broken keymap must not lock anyone out of the UI.
    """
    keymap: dict[str, str] = {}
    problems: list[str] = []
    user_file = Path(os.environ.get("CTUI_KEYMAP", KEYMAP_FILE)).expanduser()
    if user_file.is_file():
        try:
            data = tomllib.loads(user_file.read_text())
            table = data.get("keymap", data)
            keymap.update(_strings(table, str(user_file), problems))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{user_file}: {exc}")
    try:
        from ctui.config import load_config

        raw = load_config(project.root).raw
        table = (raw.get("tui") or {}).get("keymap") or {}
        keymap.update(_strings(table, "[tui.keymap]", problems))
    except Exception as exc:  # noqa: BLE001 - the config's own errors show elsewhere
        problems.append(f"keymap not loaded from the project config: {exc}")
    return keymap, problems


def _strings(table: Any, where: str, problems: list[str]) -> dict[str, str]:
    if not isinstance(table, dict):
        problems.append(f'{where}: expected a table of binding-id = "keys"')
        return {}
    good = {k: v for k, v in table.items() if isinstance(v, str)}
    for k in table.keys() - good.keys():
        problems.append(f'{where}: {k} must be a string of keys like "ctrl+d,d"')
    return good


class CtuiApp(App[None]):
    """`CtuiApp(project)`; `clock` freezes "3m ago" times (tests, screenshots)."""

    CSS_PATH = "app.tcss"
    TITLE = "ctui"
    COMMANDS = App.COMMANDS | {ScreenActions}
    ENABLE_COMMAND_PALETTE = True

    #: the navigation model (ctui/tui/help.md, "Everywhere"): `esc`/`q` back one screen, `q`
    #: quits on the home screen, `Q`/ctrl+c quit from anywhere, `?` this screen's keys, `:` jump
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("Q", "quit", "Quit", show=False, id="app.quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="app.quit_now"),
        Binding("q", "back_or_quit", "Back", show=False, id="app.back"),
        Binding("escape", "back", "Back", show=False, id="app.escape"),
        Binding("question_mark", "help", "Help", show=False, id="app.help"),
        # priority: handled before the keys after it reach the screen, so a fast `:triggers⏎`
        # lands in the prompt (check_action lets `:` through to an input being typed in)
        Binding("colon", "jump", "Jump", show=False, priority=True, id="app.jump"),
    ]
    #: the smallest terminal the screens are laid out for
    MIN_SIZE = (80, 24)

    def __init__(
        self,
        project: Project,
        *,
        clock: Clock | None = None,
        poll_interval: float | None = None,
        keymap: dict[str, str] | None = None,
        open_run: str | None = None,
        open_diff: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.project = project
        #: a run to open at start (`ctui tui RUN`) or runs to diff (`ctui diff A B --tui`)
        self.open_run = open_run
        self.open_diff = list(open_diff) if open_diff else None
        self.clock = clock
        self.poll_interval = poll_interval
        self.sub_title = project.root.name
        self._keymap_override = keymap

    def get_default_screen(self) -> Screen[Any]:
        from ctui.tui.screens.runs import RunsScreen

        return RunsScreen(self.project, clock=self.clock, poll_interval=self.poll_interval)

    def on_mount(self) -> None:
        if self._keymap_override is not None:
            keymap, problems = self._keymap_override, list[str]()
        else:
            keymap, problems = load_keymap(self.project)
        if keymap:
            self.set_keymap(keymap)
        for problem in problems:
            self.notify(problem, title="keymap", severity="warning", timeout=8, markup=False)

    def on_ready(self) -> None:
        if self.open_run is not None:
            from ctui.tui.screens.run_detail import RunDetailScreen

            self.push_screen(RunDetailScreen(self.project, self.open_run, clock=self.clock))
        elif self.open_diff is not None:
            from ctui.tui.screens.diff import DiffScreen

            self.push_screen(DiffScreen(self.project, self.open_diff))
        self._check_size()

    def on_resize(self) -> None:
        # runs before App's own handler has taken the new size, so look once it has
        self.call_later(self._check_size)

    def _check_size(self) -> None:
        """Below 80×24 an overlay says so (the screens are laid out for at least that)."""
        from ctui.tui.screens.too_small import TooSmallScreen

        width, height = self.size
        small = width < self.MIN_SIZE[0] or height < self.MIN_SIZE[1]
        shown = [s for s in self.screen_stack if isinstance(s, TooSmallScreen)]
        if small and not shown:
            self.push_screen(TooSmallScreen(self.MIN_SIZE))
        elif small:
            shown[-1].show_size(width, height)
        elif shown and self.screen is shown[-1]:
            self.pop_screen()

    # -- the navigation model --------------------------------------------------------------
    async def action_back(self) -> None:
        """One screen back (the screen's own `back` when it has one, so it can clean up)."""
        if len(self.screen_stack) <= 1:
            return
        screen = self.screen
        if hasattr(screen, "action_back"):
            await screen.run_action("back")
        else:
            screen.dismiss(None)

    async def action_back_or_quit(self) -> None:
        """`q`: back one screen; on the home screen, quit."""
        if len(self.screen_stack) <= 1:
            self.exit()
        else:
            await self.action_back()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "jump":
            from textual.widgets import Input, TextArea

            # a modal may say a jump makes no sense there (the too-small overlay)
            if not getattr(self.screen, "JUMP", True):
                return False
            return not isinstance(self.focused, Input | TextArea)
        return True

    async def action_jump(self) -> None:
        from ctui.tui.screens.jump import JumpScreen

        if isinstance(self.screen, JumpScreen):
            return
        prompt = JumpScreen()
        await self.push_screen(prompt, self._jumped)
        prompt.focus_input()

    def _jumped(self, name: str | None) -> None:
        """The prompt's answer. A modal it was opened over (a question, the columns chooser)
        is closed first, answered as its `escape` would, unless the jump is to its help."""
        from ctui.tui.screens.modal import NavModal

        if not name:
            return
        if name != "help":
            while isinstance(self.screen, NavModal) and len(self.screen_stack) > 1:
                self.screen.dismiss(self.screen.BACK)
        self.jump_to(name)

    def jump_to(self, name: str) -> None:
        """Go to a screen by name: `runs` (home), `triggers`, `help`; `q`/`quit` quits."""
        from ctui.tui.screens.jump import JUMP_TARGETS

        target = JUMP_TARGETS.get(name)
        if target == "quit":
            self.exit()
        elif target == "runs":
            while len(self.screen_stack) > 1:
                self.pop_screen()
        elif target == "triggers":
            from ctui.tui.screens.triggers import TriggersScreen

            if not isinstance(self.screen, TriggersScreen):
                self.push_screen(
                    TriggersScreen(self.project, clock=self.clock, poll_interval=self.poll_interval)
                )
        elif target == "help":
            self.action_help()

    def deliver_screenshot(
        self,
        filename: str | None = None,
        path: str | None = None,
        time_format: str | None = None,
    ) -> str | None:
        """The palette's "Screenshot": an SVG under `.ctui/screenshots/` (Textual's default,
        the user's Downloads folder, is often missing on a server and the save then failed)."""
        folder = Path(path) if path else self.project.state_dir / "screenshots"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            saved = self.save_screenshot(filename, str(folder), time_format)
        except OSError as exc:
            self.notify(f"screenshot not saved: {exc}", title="Screenshot", severity="error")
            return None
        self.notify(f"saved {saved}", title="Screenshot", markup=False)
        return saved

    def action_help(self) -> None:
        from ctui.tui.screens.help import HelpScreen, screen_keys

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(screen_keys(self.screen), of_screen=self.screen))
