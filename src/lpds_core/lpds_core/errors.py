"""The errors a user can fix. Every command prints one of these as a single line naming the problem and the fix
(exit code 2), never a traceback: anything else reaching the top of a command is a bug in LP-DS.

One hierarchy for the whole stack (core, sim, ros), so a command catches `UserError` once instead of keeping a
list of every module's error types.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input, settings or files: the message says what is wrong and how to fix it."""


class ConfigError(UserError, ValueError):
    """A config file or command line names a setting that does not exist, or gives it a bad value."""


class RunError(UserError, RuntimeError):
    """A run folder cannot be used as asked (exists without --resume, unfinished, of another task or kind, ...)."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file is missing, unreadable, or does not fit what the caller expects."""


class DataError(UserError, ValueError):
    """A dataset or recording is missing, truncated, has NaN/Inf, or a layout other than the task's."""
