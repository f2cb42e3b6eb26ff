"""'Applies when' rules: when a field matters, as a test on the other fields' values plus words."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """When a field matters, as a test on the other fields' values plus words for help texts."""

    test: Callable[[Mapping[str, Any]], bool]
    text: str

    def __call__(self, values: Mapping[str, Any]) -> bool:
        return bool(self.test(values))

    def __and__(self, other: Rule) -> Rule:
        return Rule(lambda v: self(v) and other(v), f"{self.text} and {other.text}")

    def __or__(self, other: Rule) -> Rule:
        return Rule(lambda v: self(v) or other(v), f"{self.text} or {other.text}")

    def __invert__(self) -> Rule:
        return Rule(lambda v: not self(v), f"not ({self.text})")


def equals(name: str, *values: Any) -> Rule:
    """``name`` has one of ``values``."""
    return Rule(lambda v: v.get(name) in values, f"{name} = {' or '.join(map(str, values))}")


def given(name: str) -> Rule:
    """``name`` is set (not None and not empty)."""
    return Rule(lambda v: v.get(name) not in (None, ""), f"{name} is given")


def not_given(name: str) -> Rule:
    return Rule(lambda v: v.get(name) in (None, ""), f"no {name}")


def is_on(name: str) -> Rule:
    return Rule(lambda v: bool(v.get(name)), f"{name} is on")


def is_off(name: str) -> Rule:
    return Rule(lambda v: not v.get(name), f"{name} is off")
