"""Gate rules: one comparison each, over a run's values and the champion's.

    metric.acc >= champion.acc - 0.005
    metric.loss < 0.5
    peaks.max_rss < 8e9
    0.001 <= param.lr <= 0.1
    metric["val/loss"] < champion.metric["val/loss"]

Terms are the filter language's (`metric.NAME`, `param.NAME`, `peaks.NAME`) plus
`champion.NAME` (the champion's metric; `champion.metric.NAME`, `champion.param.NAME`,
`champion.peaks.NAME` also work), numbers, `+ - * /` and parentheses, compared with
`>= > <= < == !=`. A rule is parsed by Python's `ast` and every node is checked against a
whitelist: nothing is ever executed. A missing value fails the rule and says which.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ctui.format import significant
from ctui.numbers import as_number

#: the namespaces a term may name, with the run field each reads
NAMESPACES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "peaks": "peaks",
}
_COMPARE: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], bool]]] = {
    ast.GtE: (">=", operator.ge),
    ast.Gt: (">", operator.gt),
    ast.LtE: ("<=", operator.le),
    ast.Lt: ("<", operator.lt),
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
}
_ARITH: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
}
_CMP_NAMES = {"In": "in", "NotIn": "not in", "Is": "is", "IsNot": "is not"}
_HINT = "rules name metric.X, param.X, peaks.X or champion.X"
NO_CHAMPION = "no champion yet"


@dataclass(frozen=True)
class Ref:
    """A term of a rule: whose value (`run` or `champion`), which field, which name."""

    text: str
    source: str
    field: str
    name: str
    #: where the term is in the rule's text (byte offsets, like `ast`'s)
    span: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Rule:
    text: str
    tree: ast.Expression
    refs: tuple[Ref, ...]

    @property
    def needs_champion(self) -> bool:
        return any(r.source == "champion" for r in self.refs)

    def ref_at(self, node: ast.AST) -> Ref:
        span = (getattr(node, "col_offset", 0), getattr(node, "end_col_offset", 0))
        return next(r for r in self.refs if r.span == span)


class _Missing(Exception):
    pass


def parse_rule(text: str) -> Rule:
    """Parse and check one rule; a ValueError says what is wrong with it."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the rule is empty")
    text = " ".join(text.split())
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        hint = ""
        if re.search(r"(?<![=<>!])=(?!=)", text):
            hint = " (compare with ==, >=, <=)"
        raise ValueError(f"does not parse: {exc.msg}{hint}") from None
    if isinstance(tree.body, ast.BoolOp):
        raise ValueError("'and'/'or' are not allowed: write each condition as its own rule")
    if not isinstance(tree.body, ast.Compare):
        raise ValueError("a rule must be a comparison, e.g. metric.acc >= champion.acc")
    refs: list[Ref] = []
    _check(tree.body, text, refs, top=True)
    return Rule(text, tree, tuple(refs))


def _check(node: ast.AST, text: str, refs: list[Ref], *, top: bool = False) -> None:
    if isinstance(node, ast.Compare):
        if not top:
            raise ValueError("only one comparison per rule (chains like 0 < x < 1 are fine)")
        for op in node.ops:
            if type(op) not in _COMPARE:
                shown = _CMP_NAMES.get(type(op).__name__, type(op).__name__)
                raise ValueError(f"{shown!r} is not allowed; compare with >= > <= < == !=")
        for operand in (node.left, *node.comparators):
            _check(operand, text, refs)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITH:
            raise ValueError(f"{_op_text(node, text)!r} is not allowed; rules use + - * /")
        _check(node.left, text, refs)
        _check(node.right, text, refs)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise ValueError(f"{_shown(node, text)!r} is not allowed; rules use + - * /")
        _check(node.operand, text, refs)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float | str):
            raise ValueError(f"{_shown(node, text)!r} is not a number")
    elif isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
        refs.append(_ref(node, text))
    elif isinstance(node, ast.BoolOp):
        raise ValueError("'and'/'or' are not allowed: write each condition as its own rule")
    else:
        raise ValueError(f"{_shown(node, text)!r} is not allowed; {_HINT}, numbers and + - * /")


def _ref(node: ast.AST, text: str) -> Ref:
    shown = _shown(node, text)
    parts = _path(node)
    if parts is None:
        raise ValueError(f"{shown!r} is not a field; {_HINT}")
    head, rest = parts[0], parts[1:]
    source = "run"
    if head == "champion":
        source = "champion"
        if len(rest) >= 2 and rest[0] in NAMESPACES:
            head, rest = rest[0], rest[1:]
        else:
            head = "metric"
    if head not in NAMESPACES:
        raise ValueError(f"unknown field {shown!r}; {_HINT}")
    if not rest or not all(rest):
        raise ValueError(f"{shown!r} needs a name, e.g. {head}.acc")
    span = (getattr(node, "col_offset", 0), getattr(node, "end_col_offset", 0) or 0)
    return Ref(shown, source, NAMESPACES[head], ".".join(rest), span)


def _path(node: ast.AST) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        base = _path(node.value)
        return None if base is None else [*base, node.attr]
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            base = _path(node.value)
            return None if base is None else [*base, key.value]
    return None


def _shown(node: ast.AST, text: str) -> str:
    return ast.get_source_segment(text, node) or type(node).__name__


def _op_text(node: ast.BinOp, text: str) -> str:
    between = _between(text, node.left, node.right)
    return between.strip() or type(node.op).__name__


def _between(text: str, a: ast.AST, b: ast.AST) -> str:
    raw = text.encode()
    start, end = getattr(a, "end_col_offset", 0), getattr(b, "col_offset", 0)
    return raw[start:end].decode(errors="replace")


# --- evaluation ---------------------------------------------------------------------------


def evaluate(
    rules: Iterable[str | Rule],
    run: dict[str, Any],
    champion_run: dict[str, Any] | None,
    *,
    no_champion: str = NO_CHAMPION,
) -> dict[str, Any]:
    """The verdict of `run` against `champion_run` (None: there is none, and rules naming
    `champion.` are skipped as passed). Returns the run's `gate` field minus `at`/`promoted`:
    `{"passed", "verdict", "rules": [{"rule", "passed", "detail"}], "champion"}`."""
    parsed = [r if isinstance(r, Rule) else parse_rule(r) for r in rules]
    results = [_evaluate_one(rule, run, champion_run, no_champion) for rule in parsed]
    failed = [r for r in results if not r["passed"]]
    skipped = sum(1 for r in results if r.get("skipped"))
    champion = champion_run.get("id") if champion_run else None
    if not results:
        verdict = "no gate rules: promoted" + ("" if champion_run else " (first run)")
    elif failed:
        verdict = "not promoted: " + "; ".join(r["summary"] for r in failed)
    else:
        n = len(results)
        checked = n - skipped
        if skipped:
            verdict = (
                f"promoted: {checked} {_rules(checked)} passed, {skipped} skipped ({no_champion})"
            )
        else:
            verdict = f"promoted: {'all ' if n > 1 else ''}{n} {_rules(n)} passed"
    for r in results:
        r.pop("summary", None)
        r.pop("skipped", None)
    return {"passed": not failed, "verdict": verdict, "rules": results, "champion": champion}


def _rules(n: int) -> str:
    return "rule" if n == 1 else "rules"


def _evaluate_one(
    rule: Rule, run: dict[str, Any], champion_run: dict[str, Any] | None, no_champion: str
) -> dict[str, Any]:
    if rule.needs_champion and champion_run is None:
        detail = f"skipped: {no_champion}"
        return {"rule": rule.text, "passed": True, "detail": detail, "skipped": True}
    values: dict[int, Any] = {}
    body = rule.tree.body
    assert isinstance(body, ast.Compare)
    try:
        operands = [
            _value(rule, n, run, champion_run, values) for n in (body.left, *body.comparators)
        ]
        passed = all(
            _compare(_COMPARE[type(op)][1], a, b)
            for op, a, b in zip(body.ops, operands, operands[1:], strict=False)
        )
    except _Missing as exc:
        why = str(exc)
        return {"rule": rule.text, "passed": False, "detail": why, "summary": why}
    shown = _annotated(rule.text, values)
    compound = any(not isinstance(n, ast.Constant) and id(n) not in values for n in _operands(body))
    if compound:
        reduced = _reduced(body, operands)
        detail = f"{shown} → {reduced}: {'passed' if passed else 'failed'}"
    else:
        detail = f"{shown}: {'passed' if passed else 'failed'}"
    return {"rule": rule.text, "passed": passed, "detail": detail, "summary": f"{shown} failed"}


def _operands(body: ast.Compare) -> list[ast.expr]:
    return [body.left, *body.comparators]


def _reduced(body: ast.Compare, operands: list[Any]) -> str:
    out = _fmt(operands[0])
    for op, value in zip(body.ops, operands[1:], strict=False):
        out += f" {_COMPARE[type(op)][0]} {_fmt(value)}"
    return out


def _value(
    rule: Rule,
    node: ast.AST,
    run: dict[str, Any],
    champion_run: dict[str, Any] | None,
    values: dict[int, Any],
) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp):
        v = _number(_value(rule, node.operand, run, champion_run, values), node)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a = _number(_value(rule, node.left, run, champion_run, values), node.left)
        b = _number(_value(rule, node.right, run, champion_run, values), node.right)
        symbol, fn = _ARITH[type(node.op)]
        if symbol == "/" and b == 0:
            raise _Missing("division by zero")
        return fn(a, b)
    ref = rule.ref_at(node)
    doc = champion_run if ref.source == "champion" else run
    value = ((doc or {}).get(ref.field) or {}).get(ref.name)
    name = _term(ref)
    if value is None:
        whose = f" (champion {doc.get('id')})" if ref.source == "champion" and doc else ""
        raise _Missing(f"{name} is missing{whose}")
    values[id(node)] = (node, value)
    return value


def _term(ref: Ref) -> str:
    prefix = {"metrics": "metric", "params": "param", "peaks": "peaks"}[ref.field]
    if ref.source == "champion":
        return f"champion.{ref.name}" if prefix == "metric" else f"champion.{prefix}.{ref.name}"
    return f"{prefix}.{ref.name}"


def _number(value: Any, node: ast.AST) -> float | int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    number = as_number(value)
    if number is None:
        raise _Missing(f"{_fmt(value)} is not a number")
    return number


def _compare(fn: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    na, nb = as_number(a), as_number(b)
    if na is not None and nb is not None:
        return fn(na, nb)
    if fn in (operator.eq, operator.ne):
        return fn(str(a), str(b))
    raise _Missing(f"{_fmt(a)} and {_fmt(b)} cannot be ordered: not both numbers")


def _annotated(text: str, values: dict[int, Any]) -> str:
    """The rule with each term's value written after it: `metric.acc 0.41 >= ...`."""
    raw = text.encode()
    inserts = sorted(
        (node.end_col_offset, f" {_fmt(value)}".encode()) for node, value in values.values()
    )
    out, last = b"", 0
    for at, piece in inserts:
        out += raw[last:at] + piece
        last = at
    return (out + raw[last:]).decode()


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else significant(value)
