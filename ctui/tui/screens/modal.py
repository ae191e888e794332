"""The navigation model on modal screens (a question, the columns chooser, a prompt, …).

Textual gives a modal screen none of the app's bindings but the priority ones (`ctrl+c`,
`:`), so `?`, `escape`/`q` and `Q` would do nothing there. `NavModal` binds them once for
every modal: `?` shows the keys of this modal, `escape`/`q` go back (the modal is dismissed
with `BACK`, its "no" or "cancel" answer), `Q` quits. `:` is the app's own binding; a jump
from a modal closes the modal first (answered as `escape` would), and a modal where a jump
makes no sense sets `JUMP = False`.

While an input has the focus, printable keys are typed into it (`?`, `q`, `Q` included):
`escape` still goes back and `ctrl+c` still quits.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from textual.binding import Binding, BindingType
from textual.screen import ModalScreen

ResultT = TypeVar("ResultT")


class NavModal(ModalScreen[ResultT]):
    """A modal screen with the keys every screen has; subclasses add their own bindings."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help", show=False, id="modal.help"),
        Binding("escape,q", "back", "Back", show=False, id="modal.back"),
        Binding("Q", "app.quit", "Quit", show=False, id="modal.quit"),
    ]

    #: what `escape`/`q` (and a jump away) answer
    BACK: ClassVar[Any] = None
    #: whether `:` may jump away from this modal
    JUMP: ClassVar[bool] = True

    def action_back(self) -> None:
        self.dismiss(self.BACK)
