"""The run detail's keys: j/k/g/G/ctrl+d/ctrl+u move in the tab in view (the overview and
resources scroll, the manifest tree's cursor, the log's own keys), a tab key focuses what it
shows (no Tab needed first), and the chart keys work on the metrics tab only."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.widgets import TabbedContent, Tree

from ctui.tui.widgets.chart_browser import ChartBrowser


class DetailKeys:
    """Mixed into RunDetailScreen (a Screen with the tabs, the tree and `#metrics-charts`)."""

    if TYPE_CHECKING:
        query_one: Any
        refresh_bindings: Any

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        target = self._nav_target()
        if target is not None and target.focusable:
            target.focus()

    def _nav_target(self) -> Any:
        """The widget j/k/g/G/ctrl+d/ctrl+u move in, on the tab in view."""
        tab = self.query_one(TabbedContent).active
        if tab == "manifest":
            return self.query_one("#manifest-tree", Tree)
        if tab == "log":
            return self.query_one("#detail-log")
        if tab == "metrics":
            return None
        return self.query_one(f"#{tab} VerticalScroll")

    def action_move(self, where: str) -> None:
        target = self._nav_target()
        if target is None:  # the metrics tab: j/k walk the charts as a list
            if where in ("down", "up"):
                self.action_pick(1 if where == "down" else -1)
            return
        if isinstance(target, Tree):
            actions: dict[str, Callable[[], Any]] = {
                "down": target.action_cursor_down,
                "up": target.action_cursor_up,
                "top": target.action_scroll_home,
                "bottom": target.action_scroll_end,
                "half_down": target.action_page_down,
                "half_up": target.action_page_up,
            }
            actions[where]()
            return
        half = max(1, target.size.height // 2)
        if where == "down":
            target.scroll_down(animate=False)
        elif where == "up":
            target.scroll_up(animate=False)
        elif where == "top":
            target.scroll_home(animate=False)
        elif where == "bottom":
            target.scroll_end(animate=False)
        else:
            target.scroll_relative(y=half if where == "half_down" else -half, animate=False)

    #: the chart keys, shown and working on the metrics tab only
    CHART_ACTIONS: ClassVar[frozenset[str]] = frozenset({"pick", "smoothing", "log_scale"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.CHART_ACTIONS:
            # None, not False: disabled elsewhere but still listed by `?`
            return True if self.query_one(TabbedContent).active == "metrics" else None
        return True

    def on_tabbed_content_tab_activated(self) -> None:
        self.refresh_bindings()

    @property
    def charts(self) -> ChartBrowser:
        return self.query_one("#metrics-charts", ChartBrowser)

    def action_pick(self, delta: int) -> None:
        self.charts.pick(delta)

    def action_smoothing(self) -> None:
        self.charts.cycle_smoothing()

    def action_log_scale(self) -> None:
        self.charts.toggle_log()
