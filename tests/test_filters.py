"""The condition language of compare --where and run --criteria (filters.py), on its own."""

import math

import pytest

from grpo_lab import filters
from grpo_lab.errors import GrpoLabError
from grpo_lab.filters import Condition

FIELDS = ["beta", "held_out", "name", "arith-v1", "arith-v1[*]", "kl_last"]


def parsed(expr):
    return [(c.field, c.op, c.value) for c in filters.parse(expr, FIELDS, "--where")]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("beta=0.1", [("beta", "=", 0.1)]),
        ("beta==0.1", [("beta", "=", 0.1)]),  # == is =
        ("beta != 0", [("beta", "!=", 0.0)]),
        ("held_out>0.5", [("held_out", ">", 0.5)]),
        ("held_out >= 0.5", [("held_out", ">=", 0.5)]),
        ("held_out<0.5", [("held_out", "<", 0.5)]),
        ("held_out <= -1e-3", [("held_out", "<=", -0.001)]),
        ("arith-v1[*] > 0", [("arith-v1[*]", ">", 0.0)]),
        ("name = 'rep baseline'", [("name", "=", "rep baseline")]),
        ('name="x and y"', [("name", "=", "x and y")]),
        ("name=''", [("name", "=", "")]),
        ("name=rep_beta0", [("name", "=", "rep_beta0")]),
        ("name=inf", [("name", "=", "inf")]),  # not a finite number: the text itself
        ("name=nan", [("name", "=", "nan")]),
        ("name='0.5'", [("name", "=", "0.5")]),  # quoted: text, never a number
        ("  beta=0.1   and   held_out>0.5  ", [("beta", "=", 0.1), ("held_out", ">", 0.5)]),
        (
            "beta=0.1 and held_out>0.5 and kl_last<1",
            [("beta", "=", 0.1), ("held_out", ">", 0.5), ("kl_last", "<", 1.0)],
        ),
        ("", []),
        ("   ", []),
        (None, []),
    ],
)
def test_parse(expr, expected):
    got = parsed(expr)
    assert got == expected
    assert [type(v) for *_, v in got] == [type(v) for *_, v in expected]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "colour=red",
            "--where: unknown field 'colour'; a field is a flag (beta), a run field (name, status) or a metric "
            "(held_out, arith-v1)",
        ),
        ("heldout>0", "--where: unknown field 'heldout'; did you mean held_out?"),
        ("arith_v1>0", "--where: unknown field 'arith_v1'; did you mean arith-v1 or arith-v1[*]?"),
        ("beta=", "--where: expected FIELD OP VALUE (OP one of != >= <= == = > <), got 'beta ='"),
        ("=1", "--where: expected FIELD OP VALUE (OP one of != >= <= == = > <), got '= 1'"),
        ("beta", "--where: expected FIELD OP VALUE (OP one of != >= <= == = > <), got 'beta'"),
        ("beta = = 1", "got 'beta = ='"),
        ("'beta'=1", "got \"'beta' = 1\""),
        ("beta=0.1 or beta=0", "--where: expected 'and' between conditions, got 'or'"),
        ("beta=0.1 and", "got 'nothing'"),
        ("beta=0.1 beta=0", "expected 'and' between conditions, got 'beta'"),
        ("beta=0.1 and and held_out>0", "got 'and held_out >'"),
        ("name='open", '--where: cannot read "\'open"; write conditions like beta=0.1 and held_out>0'),
        ("beta=0.1 AND held_out>0", "expected 'and' between conditions, got 'AND'"),
    ],
)
def test_malformed(expr, message):
    with pytest.raises(GrpoLabError) as err:
        filters.parse(expr, FIELDS, "--where")
    assert message in str(err.value)


def test_the_option_name_is_the_callers():
    with pytest.raises(GrpoLabError, match=r"^--criteria: unknown field 'x'"):
        filters.parse("x=1", FIELDS, "--criteria")
    with pytest.raises(GrpoLabError, match=r"^--where: unknown field 'x'"):
        filters.parse("x=1", FIELDS)


@pytest.mark.parametrize(
    ("op", "actual", "value", "holds"),
    [
        ("=", 0.5, 0.5, True), ("=", 0.5, 0.6, False),
        ("!=", 0.5, 0.6, True), ("!=", 0.5, 0.5, False),
        (">", 0.6, 0.5, True), (">", 0.5, 0.5, False),
        (">=", 0.5, 0.5, True), (">=", 0.4, 0.5, False),
        ("<", 0.4, 0.5, True), ("<", 0.5, 0.5, False),
        ("<=", 0.5, 0.5, True), ("<=", 0.6, 0.5, False),
    ],
)  # fmt: skip
def test_a_condition_holds_exactly_at_its_boundary(op, actual, value, holds):
    assert Condition("x", op, value).holds(actual) is holds
    negated = Condition("x", filters.NEGATION[op], value)
    assert negated.holds(actual) is (not holds)  # the negation is the exact complement


def test_how_a_condition_reads():
    assert str(Condition("arith-v1", ">=", 0.42)) == "arith-v1 >= 0.42"
    assert str(Condition("kl", "<", 1 / 3)) == "kl < 0.3333"
    assert str(Condition("name", "=", "rep")) == "name = 'rep'"
    assert str(Condition("steps", ">", 3)) == "steps > 3"


@pytest.mark.parametrize(
    ("text", "conditions"),
    [("arith-v1 > 0.4", True), ("a=b", True), ("x<1", True), ("better than baseline", False), ("", False),
     ("up and to the right!", False)],
)  # fmt: skip
def test_free_text_is_told_from_conditions(text, conditions):
    assert filters.looks_like_conditions(text) is conditions


def test_values_are_finite_numbers_or_text():
    assert filters._value("word", "1e3") == 1000.0
    assert filters._value("word", "-0") == 0.0 and math.copysign(1, filters._value("word", "-0")) == -1
    assert filters._value("word", "1e999") == "1e999" and filters._value("word", "-inf") == "-inf"
    assert filters._value("str", "'1e3'") == "1e3" and filters._value("str", '""') == ""
