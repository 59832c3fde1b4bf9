"""Argument checks: the rule's JSON Schema, then the per-argument rules. Pure; denies say why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jsonschema

from stockade.textsafe import safe_text

from ._patterns import path_under, url_host_allowed
from ._tools import ArgumentRule, Arguments

__all__ = ["CompiledArguments"]


def _name(name: str) -> str:
    return safe_text(name, single_line=True, limit=64)


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    rule: ArgumentRule
    pattern: re.Pattern[str] | None


class CompiledArguments:
    """``Arguments`` with the JSON Schema validator and regexes compiled once."""

    def __init__(self, spec: Arguments) -> None:
        self._validator = (
            jsonschema.Draft202012Validator(spec.json_schema)
            if spec.json_schema is not None
            else None
        )
        self._rules = tuple(
            _CompiledRule(n, r, re.compile(r.pattern) if r.pattern is not None else None)
            for n, r in sorted(spec.rules.items())
        )

    def check(self, arguments: dict[str, Any]) -> str | None:
        """``None`` when the arguments pass; else a reason naming the argument and the rule."""
        if self._validator is not None:
            try:
                error = jsonschema.exceptions.best_match(self._validator.iter_errors(arguments))
            except RecursionError:
                return "arguments are nested too deeply to validate"
            if error is not None:
                where = "/".join(_name(str(p)) for p in error.absolute_path) or "(all)"
                return f"argument {where} fails json_schema keyword {error.validator!r}"
        for r in self._rules:
            if r.name not in arguments:
                continue
            why = _check(arguments[r.name], r)
            if why is not None:
                return f"argument {_name(r.name)!r} fails rule {why}"
        return None


def _check(value: Any, r: _CompiledRule) -> str | None:
    rule = r.rule
    if rule.enum is not None and not any(type(v) is type(value) and v == value for v in rule.enum):
        return "enum: value is not one of the allowed values"
    string_rules = (rule.pattern, rule.prefix, rule.path_under, rule.max_length, rule.domains)
    if all(x is None for x in string_rules):
        return None
    if not isinstance(value, str):
        return f"type: expected a string, got {type(value).__name__}"
    if rule.max_length is not None and len(value) > rule.max_length:
        return f"max_length: {len(value)} characters, over {rule.max_length}"
    if r.pattern is not None and r.pattern.fullmatch(value) is None:
        return "pattern: value does not match"
    if rule.prefix is not None and not value.startswith(rule.prefix):
        return "prefix: value does not start with the required prefix"
    if rule.path_under is not None:
        why = path_under(value, rule.path_under)
        if why is not None:
            return f"path_under: {safe_text(why, single_line=True, limit=160)}"
    if rule.domains is not None:
        why = url_host_allowed(value, rule.domains)
        if why is not None:
            return f"domains: {safe_text(why, single_line=True, limit=160)}"
    return None
