"""The condition language of ``compare --where`` and ``run --criteria``: ``FIELD OP VALUE [and ...]``.

Parsed here into (field, operator, value) conditions, with field names checked against a list the
caller gives; values are never spliced into SQL (the store binds them) and never evaluated as code.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from .errors import GrpoLabError

OPS = ("!=", ">=", "<=", "==", "=", ">", "<")
_TOKEN = re.compile(r"""\s*(?:(?P<op>!=|>=|<=|==|=|>|<)|(?P<str>'[^']*'|"[^"]*")|(?P<word>[^\s=<>!'"]+))""")
COMPARE = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt,
           "<=": operator.le}  # fmt: skip
MAX_CONDITIONS = 64  # each is a join in SQL; hundreds exceed what a database takes in one query
NEGATION = {"=": "!=", "!=": "=", ">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def suggest(name: str, known: Sequence[str] | Any, what: str = "a flag (beta), a run field (name, status) or a "
            "metric (held_out, arith-v1)") -> str:  # fmt: skip
    """What to say after "unknown field NAME": the closest known names (difflib), else what a field is."""
    import difflib

    close = difflib.get_close_matches(name, list(dict.fromkeys(k for k in known if " " not in k)), n=3, cutoff=0.6)
    if close:
        return f"; did you mean {', '.join(close[:-1])}{' or ' if len(close) > 1 else ''}{close[-1]}?"
    return f"; a field is {what}" if what else ""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # = != > >= < <=
    value: Any
    text: str | None = dataclass_field(default=None, compare=False, repr=False)  # the value as typed

    def holds(self, actual: Any) -> bool:
        return COMPARE[self.op](actual, self.value)

    def __str__(self) -> str:
        return f"{self.field} {self.op} {_show(self.value)}"


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def looks_like_conditions(text: str) -> bool:
    """True when text uses a comparison operator, so it is meant as conditions (free text never is)."""
    return any(op in text for op in ("=", "<", ">"))


def _tokens(expr: str, option: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise GrpoLabError(f"{option}: cannot read {expr[pos:]!r}; write conditions like beta=0.1 and held_out>0")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _value(kind: str, text: str) -> Any:
    if kind == "str":
        return text[1:-1]
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _value_text(kind: str, text: str) -> str:
    return text[1:-1] if kind == "str" else text


def parse(expr: str | None, fields: Sequence[str], option: str = "--where") -> list[Condition]:
    """``field op value [and field op value ...]`` with op one of = == != > >= < <=; fields must be in ``fields``."""
    if not expr or not expr.strip():
        return []
    tokens = _tokens(expr, option)
    conditions = []
    i = 0
    while True:
        if i + 3 > len(tokens) or tokens[i][0] != "word" or tokens[i + 1][0] != "op" or tokens[i + 2][0] == "op":
            got = " ".join(t for _, t in tokens[i : i + 3]) or "nothing"
            raise GrpoLabError(f"{option}: expected FIELD OP VALUE (OP one of {' '.join(OPS)}), got {got!r}")
        field, op, (kind, raw) = tokens[i][1], tokens[i + 1][1], tokens[i + 2]
        if field not in fields:
            raise GrpoLabError(f"{option}: unknown field {field!r}{suggest(field, fields)}")
        conditions.append(Condition(field, "=" if op == "==" else op, _value(kind, raw), _value_text(kind, raw)))
        if len(conditions) > MAX_CONDITIONS:
            raise GrpoLabError(f"{option}: more than {MAX_CONDITIONS} conditions; narrow the selection in steps")
        i += 3
        if i == len(tokens):
            return conditions
        if tokens[i] != ("word", "and"):
            raise GrpoLabError(f"{option}: expected 'and' between conditions, got {tokens[i][1]!r}")
        i += 1
