"""What every command shares: options declared once, the error wrapper, output.

Command modules import only click and this module at the top; each command
imports its library inside its function, so that ``genomenode --help`` loads
neither the ingest stack nor the web server.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import pathlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import GenomenodeError

__all__ = [
    "Command",
    "Group",
    "access_end",
    "command",
    "errors_to_exit",
    "group",
    "json_option",
    "listen_options",
    "node_option",
    "operator",
    "print_json_line",
    "print_result",
    "require_node",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


class Command(click.Command):
    """A command whose one-line summary is shown whole in its group's listing
    (click's default cuts it at 45 characters or the terminal width)."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or _first_paragraph(self.help)


class Group(click.Group):
    """A group of :class:`Command` (and groups of them), summaries shown whole."""

    command_class = Command

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or _first_paragraph(self.help)


Group.group_class = Group

command = functools.partial(click.command, cls=Command)
group = functools.partial(click.group, cls=Group)


def _missing_node(context: click.Context, parameter: click.Parameter | None) -> None:
    raise click.MissingParameter(
        ctx=context,
        param=parameter,
        param_type="option",
        message="Give the node directory with --node DIR or set $GENOMENODE_NODE.",
    )


def _node_given(
    context: click.Context, parameter: click.Parameter, value: pathlib.Path | None
) -> pathlib.Path:
    if value is None:
        _missing_node(context, parameter)
    return value  # type: ignore[return-value]  # _missing_node never returns


def require_node(context: click.Context, node_dir: pathlib.Path | None) -> pathlib.Path:
    """``node_dir`` of an optional ``--node`` where a command needs it after all."""
    if node_dir is None:
        parameter = next(
            (item for item in context.command.params if item.name == "node_dir"), None
        )
        _missing_node(context, parameter)
    return node_dir  # type: ignore[return-value]


def node_option(function: _F | None = None, *, required: bool = True) -> Any:
    """``--node DIR``, default ``$GENOMENODE_NODE``: the node to act on.

    Used bare (``@node_option``) it is required; ``@node_option(required=False)``
    leaves the check to :func:`require_node`.
    """

    def decorate(function: _F) -> _F:
        return click.option(
            "--node",
            "node_dir",
            envvar="GENOMENODE_NODE",
            show_envvar=True,
            callback=_node_given if required else None,
            type=click.Path(file_okay=False, path_type=pathlib.Path),
            metavar="DIR",
            help="The node directory (made by `genomenode init`).",
        )(function)

    return decorate if function is None else decorate(function)


def json_option(function: _F) -> _F:
    """``--json``: print the result as JSON instead of text."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON for scripts."
    )(function)


def listen_options(port: int, serves: str) -> Callable[[_F], _F]:
    """``--host``, ``--port`` (default ``port``) and ``--workers`` of a server."""

    def decorate(function: _F) -> _F:
        function = click.option(
            "--workers",
            default=1,
            show_default=True,
            type=click.IntRange(min=1),
            help=f"Server processes (each {serves} on its own).",
        )(function)
        function = click.option(
            "--port", default=port, show_default=True, type=int, help="Port to bind."
        )(function)
        return click.option(
            "--host", default="127.0.0.1", show_default=True, help="Address to bind."
        )(function)

    return decorate


def errors_to_exit(function: _F) -> _F:
    """Print a GenomenodeError or an OSError as one clear line; exit 1.

    No traceback for what the user can fix: a library error already names the
    file and field, an operating-system error names the path and the reason.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except GenomenodeError as error:
            _fail(str(error))
        except OSError as error:
            _fail(_os_error_text(error))

    return wrapper  # type: ignore[return-value]


def _os_error_text(error: OSError) -> str:
    reason = error.strerror or str(error)
    if error.filename is None:
        return reason
    if error.filename2 is not None:
        return f"{error.filename} -> {error.filename2}: {reason}"
    return f"{error.filename}: {reason}"


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


def operator() -> str:
    """The actor of an operator's command in the audit log: ``operator:`` and the
    login name."""
    import getpass

    return f"operator:{getpass.getuser()}"


def print_result(result: Any, as_json: bool, text: str) -> None:
    """``result`` as indented JSON with ``--json``, else ``text``."""
    click.echo(json.dumps(result, indent=2, sort_keys=True) if as_json else text)


def print_json_line(result: Any) -> None:
    """``result`` as one JSON line, flushed (for servers: read before they exit)."""
    click.echo(json.dumps(result, sort_keys=True))
    sys.stdout.flush()


def access_end(ends_at: dt.datetime | str) -> str:
    """When access ends, as people read it: ``--until 2030-12-31`` stores
    2031-01-01T00:00 UTC, shown as "the end of 2030-12-31 (UTC)"."""
    moment = dt.datetime.fromisoformat(ends_at) if isinstance(ends_at, str) else ends_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    if moment.time() == dt.time(0):
        return f"the end of {(moment - dt.timedelta(days=1)).date()} (UTC)"
    return moment.isoformat()
