"""Command-palette provider: the current screen's actions (its bindings), plus sorting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ScreenActions(Provider):
    """Every binding active on the screen under the palette, by its description."""

    def _commands(self) -> list[tuple[str, Callable[[], Awaitable[Any]], str]]:
        screen = self.screen
        commands: list[tuple[str, Callable[[], Awaitable[Any]], str]] = []
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not active.enabled or not binding.description or binding.action in seen:
                continue
            if binding.action in ("command_palette",):
                continue
            seen.add(binding.action)
            display = self.app.get_key_display(binding) or key
            node: Any = active.node  # a Widget, Screen or the App: all have run_action
            run = partial(node.run_action, binding.action)
            commands.append((binding.description, run, f"key: {display}"))
        # the screens `:` jumps to, by name
        jump_to = getattr(self.app, "jump_to", None)
        if jump_to is not None:
            for target, label in (("runs", "Go to runs"), ("triggers", "Go to triggers")):

                async def go(name: str = target) -> None:
                    jump_to(name)

                commands.append((label, go, f"key: :{target}"))
        # sort by any column of the runs table, even those with no key of their own
        columns = getattr(screen, "columns", None)
        sort_by = getattr(screen, "sort_by", None)
        if columns and sort_by is not None:
            for col in columns:
                for desc in (True, False):
                    name = f"Sort by {col.label} {'descending' if desc else 'ascending'}"

                    async def run_sort(key: str = col.key, d: bool = desc) -> None:
                        sort_by(key, d)

                    commands.append((name, run_sort, f"sort the runs by {col.key}"))
        return commands

    async def discover(self) -> Hits:
        for name, run, help_text in self._commands():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, run, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, text=name, help=help_text)
