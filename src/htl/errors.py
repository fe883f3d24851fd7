"""The project's errors and the one did-you-mean helper behind its messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A config that cannot be run, with a message that says where and why."""


class DataError(ValueError):
    """Input data that cannot be used, with the file, column and value that are wrong."""


class TrainingDiverged(RuntimeError):
    """A training whose validation metric stopped being finite, with model, seed, epoch, params."""


#: What the CLI reports as one line (exit code 2) instead of a traceback.
USER_ERRORS = (ConfigError, DataError, FileNotFoundError, TrainingDiverged)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like `word` (a likely misspelling), or None."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return match[0] if match else None


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """` (did you mean '<prefix><choice>'?)` for the closest choice, or an empty string."""
    match = closest(word, choices)
    return f" (did you mean '{prefix}{match}'?)" if match else ""
