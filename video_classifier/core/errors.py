"""One kind of error for the user, and the wrapper that prints it as one line."""

from __future__ import annotations

import functools
import sys
from typing import Callable


class UserError(Exception):
    """A problem the user can fix: the message names the thing, the problem and the fix."""


class DecodeError(Exception):
    """A video (or a part of it) that does not decode. The only failure a run skips and counts; anything
    else (a bug in a transform, the model, out of memory) stops the run with its own message. Not a
    RuntimeError, so that catching one never catches the other."""


def first_line(err: BaseException) -> str:
    """An exception's message cut to its first line (FFmpeg's and the exporters' run to many), or its
    type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def exit_on_user_error(main: Callable[..., None]) -> Callable[..., None]:
    """Print a `UserError` as one line on stderr and exit 2, instead of a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
