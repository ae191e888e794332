"""The root `ctui` group: it imports a command's module only when that command is used.

typer turns every registered command's signature into click parameters when the app is
called (~2 ms a command), and registering them means importing every command module and
what those import. `ctui runs` needs one command. So the root group starts empty and
builds a command the first time it is looked up: it imports the module named in
`command_table.COMMANDS`, lets that module's `register(app)` add its commands to a
scratch typer app, and converts only the one asked for.

`ctui --help` lists every command from the table's help lines, importing none of them;
a command already built is listed from itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_command_name, get_group_from_info

from ctui.cli.command_table import COMMANDS
from ctui.cli.rich_help import import_rich_utils


def build_command(
    name: str, *, rich_markup_mode: Any, pretty_exceptions_short: bool = True
) -> _click.Command | None:
    """The click command (or group) `name`, built from its module; None if there is none."""
    entry = COMMANDS.get(name)
    if entry is None:
        return None
    module = importlib.import_module(entry[0])
    scratch = typer.Typer()
    module.register(scratch)
    for info in scratch.registered_commands:
        callback_name = info.callback.__name__ if info.callback else ""
        if (info.name or get_command_name(callback_name)) == name:
            return get_command_from_info(
                info,
                pretty_exceptions_short=pretty_exceptions_short,
                rich_markup_mode=rich_markup_mode,
            )
    for group in scratch.registered_groups:
        if group.name == name:
            return get_group_from_info(
                group,
                pretty_exceptions_short=pretty_exceptions_short,
                suggest_commands=True,
                rich_markup_mode=rich_markup_mode,
            )
    raise LookupError(f"{entry[0]}.register() adds no command {name!r}")  # a table typo


class LazyCommands(MutableMapping[str, _click.Command]):
    """The group's `commands`: every name in the table, each built on first access."""

    def __init__(self, group: LazyGroup, given: MutableMapping[str, _click.Command]):
        self._group = group
        self.built: dict[str, _click.Command] = dict(given)

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self.built:
            command = build_command(name, rich_markup_mode=self._group.rich_markup_mode)
            if command is None:
                raise KeyError(name)
            self.built[name] = command
        return self.built[name]

    def __setitem__(self, name: str, command: _click.Command) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        del self.built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self.built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(1 for name in self.built if name not in COMMANDS)

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self.built


class LazyGroup(TyperGroup):
    """A TyperGroup whose commands are built on demand (see the module docstring)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self, self.commands)
        self._listing = False

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        commands = self.commands
        assert isinstance(commands, LazyCommands)
        if self._listing and cmd_name not in commands.built and cmd_name in COMMANDS:
            return TyperCommand(
                name=cmd_name, help=COMMANDS[cmd_name][1], rich_markup_mode=self.rich_markup_mode
            )
        return commands.get(cmd_name)

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(self.commands)  # typer's reads .items(), which would build every command

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        import_rich_utils()
        self._listing = True  # list commands from the table: no module imported to say a line
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
