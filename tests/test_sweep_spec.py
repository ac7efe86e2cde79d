"""The sweep spec parser in process, word for word: every refusal's whole message, every default, every name.

test_sweep.py runs sweeps; this file pins the pure part of sweep.py (the functions scripts/mutation.py measures
for "sweep") so that a changed word, bound or default in it fails a test here and not only through a command.
"""

import hashlib
import json
import math

import pytest

from grpo_lab import sweep as sw
from grpo_lab.errors import ConfigError, GrpoLabError

TINY = {"model_name": "tiny-arith", "n_samples": 32, "batch_size": 16, "num_generations": 4, "eval_samples": 20,
        "max_steps": 2}  # fmt: skip
KNOWN = ("known: arms, base, baseline, compare, criteria, effect, expected, grid, hypothesis, metric, name, preset, "
         "seeds, tags")  # fmt: skip


def data(**over):
    out = {"name": "t", "hypothesis": "h", "seeds": "1-2", "base": dict(TINY), "grid": {"beta": [0, 0.1]},
           "baseline": "beta=0.1"}  # fmt: skip
    out.update(over)
    return {k: v for k, v in out.items() if v is not None}


def refusal(fn, *args, **kwargs) -> str:
    """The whole message of the ConfigError that ``fn`` raises."""
    with pytest.raises(GrpoLabError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# --- seeds ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seeds"),
    [
        (0, [0]),
        (sw.SEED_MAX, [sw.SEED_MAX]),
        ([0, sw.SEED_MAX], [0, sw.SEED_MAX]),
        (" 1 - 3 , 7 ", [1, 2, 3, 7]),
        ("5-5", [5]),
        ("0-10000", list(range(10001))),
        ("3,1", [3, 1]),
    ],
)
def test_seeds_at_their_bounds(value, seeds):
    assert sw.parse_seeds(value) == seeds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3-1", "seeds '3-1': the range 3-1 is empty or too long"),
        ("0-10001", "seeds '0-10001': the range 0-10001 is empty or too long"),
        ("1, 2-1", "seeds '1, 2-1': the range 2-1 is empty or too long"),
        ("1,1", "seeds '1,1' repeat a seed"),
        ("1-2,2", "seeds '1-2,2' repeat a seed"),
        ([3, 3], "seeds [3, 3] repeat a seed"),
        (-1, "seeds -1: a seed is a whole number from 0 to 4294967295"),
        ([1, 2**32], "seeds [1, 4294967296]: a seed is a whole number from 0 to 4294967295"),
        ("4294967296", "seeds '4294967296': a seed is a whole number from 0 to 4294967295"),
        ([], "seeds []: give a range like 1-8, a list like 1,3,5, or a TOML list of integers"),
        ([1, True], "seeds [1, True]: give a range like 1-8, a list like 1,3,5, or a TOML list of integers"),
        (False, "seeds False: give a range like 1-8, a list like 1,3,5, or a TOML list of integers"),
        (1.0, "seeds 1.0: give a range like 1-8, a list like 1,3,5, or a TOML list of integers"),
        ("1-", "seeds '1-': give a range like 1-8, a list like 1,3,5, or a TOML list of integers"),
        ("1," * 500 + "1", None),  # 1001 characters: refused before the regular expression reads it
    ],
)
def test_every_refusal_of_seeds_word_for_word(value, message):
    text = refusal(sw.parse_seeds, value)
    if message is None:
        assert text.endswith(": give a range like 1-8, a list like 1,3,5, or a TOML list of integers")
        assert text.startswith("seeds '1,1,1,") and "...:" in text and len(text) < 140
    else:
        assert text == message


def test_a_string_of_exactly_1000_characters_is_still_read():
    value = ",".join(f"{i:04d}" for i in range(199)) + ",00199"  # 199 seeds of 4 digits and one of 5
    assert len(value) == 1000 and sw.parse_seeds(value) == list(range(200))
    longer = value + ",200"
    assert refusal(sw.parse_seeds, longer) == (
        f"seeds {sw._shown(longer)}: give a range like 1-8, a list like 1,3,5, or a TOML list of integers"
    )


def test_shown_cuts_a_long_value_to_its_width():
    assert sw._shown("abc") == "'abc'"
    assert sw._shown("x" * 58) == "'" + "x" * 58 + "'"  # 60 characters: kept whole
    long = sw._shown("x" * 59)
    assert long == "'" + "x" * 56 + "..." and len(long) == 60
    assert sw._shown(12345, width=4) == "1..."
    assert sw._shown(10**5000) == "<a int too long to print>"


# --- --grid and --set -----------------------------------------------------------------------------------------


def test_grid_option_reads_each_value_as_what_it_is():
    assert sw.parse_grid_option(["beta=0,0.1", " n_samples = 100, 500 ", "loss_type=grpo,dr_grpo"]) == {
        "beta": [0, 0.1],
        "n_samples": [100, 500],
        "loss_type": ["grpo", "dr_grpo"],
    }
    assert sw.parse_grid_option(["mask_truncated_completions=True,false"]) == {
        "mask_truncated_completions": [True, False]
    }
    assert sw.parse_grid_option([]) == {}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["beta"], "--grid 'beta': write FLAG=V1,V2 (e.g. --grid beta=0,0.1)"),
        (["beta="], "--grid 'beta=': write FLAG=V1,V2 (e.g. --grid beta=0,0.1)"),
        (["beta=  "], "--grid 'beta=  ': write FLAG=V1,V2 (e.g. --grid beta=0,0.1)"),
        (["beta=0", " beta =0.1"], "--grid beta is given twice; give all its values once: --grid beta=V1,V2"),
    ],
)
def test_grid_option_refusals(values, message):
    assert refusal(sw.parse_grid_option, values) == message


def test_set_option():
    assert sw.parse_set_option([" max_steps = 60", "loss_type=dapo", "beta=", "x=1e-5"]) == {
        "max_steps": 60,
        "loss_type": "dapo",
        "beta": "",
        "x": 1e-5,
    }
    message = "--set 'max_steps': write FLAG=VALUE (e.g. --set max_steps=60)"
    assert refusal(sw.parse_set_option, ["max_steps"]) == message
    assert refusal(sw.parse_set_option, ["a=1", "a =2"]) == "--set a is given twice; give it once"


@pytest.mark.parametrize(
    ("text", "value"),
    [("TRUE", True), ("False", False), ("7", 7), ("-3", -3), ("0.5", 0.5), ("1e-05", 1e-5), ("inf", math.inf),
     ("grpo", "grpo"), ("", ""), ("truthy", "truthy")],
)  # fmt: skip
def test_scalar(text, value):
    got = sw._scalar(text)
    assert got == value and type(got) is type(value)


def test_flag_texts_are_short_unless_two_would_merge():
    assert sw._flag_text(0.1) == "0.1" and sw._flag_text(1e-05) == "1e-05" and sw._flag_text(0.1234567) == "0.123457"
    assert sw._flag_text(0.1234567, exact=True) == "0.1234567"
    assert sw._flag_text(True) == "True" and sw._flag_text(3) == "3" and sw._flag_text("dapo", exact=True) == "dapo"
    assert sw._value_texts([0.0, 0.1, 2]) == ["0", "0.1", "2"]
    assert sw._value_texts([0.1234567, 0.1234568, 0.5]) == ["0.1234567", "0.1234568", "0.5"]


# --- building a spec ------------------------------------------------------------------------------------------


def test_a_built_spec_holds_every_default():
    s = sw.build(data(baseline=None, seeds=None))
    assert s.name == "t" and s.hypothesis == "h" and s.seeds == [42] and s.preset is None
    assert s.base == TINY and s.baseline is None and s.tags == [] and s.metric == "arith-v1"
    assert [(a.name, a.flags, a.hypothesis, a.expected, a.criteria, a.compare, a.effect) for a in s.arms] == [
        ("beta=0", {"beta": 0}, "h", None, None, None, None),
        ("beta=0.1", {"beta": 0.1}, "h", None, None, None, None),
    ]


def test_arm_fields_come_from_the_arm_then_the_top():
    s = sw.build(
        data(
            expected="e",
            criteria="steps = 2",
            compare="diff > -1",
            effect=0.02,
            tags="one",
            metric="held_out",
            arms={
                "beta=0": {
                    "hypothesis": "h0",
                    "expected": "e0",
                    "criteria": "steps >= 1",
                    "compare": "p < 1",
                    "effect": 1,
                }
            },  # fmt: skip
        )
    )
    zero, tenth = s.arms
    fields = ("hypothesis", "expected", "criteria", "compare", "effect")
    assert [getattr(zero, f) for f in fields] == ["h0", "e0", "steps >= 1", "p < 1", 1.0]
    assert type(zero.effect) is float
    assert [getattr(tenth, f) for f in fields] == ["h", "e", "steps = 2", "diff > -1", 0.02]
    assert s.tags == ["one"] and s.metric == "held_out"


def test_named_arms_without_a_grid():
    s = sw.build(data(grid=None, baseline="base", tags=["a", "b"], preset="cpu-quick",
                      arms={"base": {}, "hot": {"flags": {"temperature": 1.0}}}))  # fmt: skip
    assert [(a.name, a.flags) for a in s.arms] == [("base", {}), ("hot", {"temperature": 1.0})]
    assert s.preset == "cpu-quick" and s.tags == ["a", "b"]
    planned = s.plan()
    assert [(p.arm, p.seed) for p in planned] == [("base", 1), ("hot", 1), ("base", 2), ("hot", 2)]
    assert planned[1].config.temperature == 1.0 and planned[0].config.exp_name == "t_base"
    assert planned[0].config.tags == ["a", "b"]


def test_sweep_tags_come_first_and_are_not_repeated():
    s = sw.build(data(tags=["x", "y"], base={**TINY, "tags": ["y", "z"]}))
    assert s.plan()[0].config.tags == ["x", "y", "z"]
    default = sw.build(data()).plan()[0].config.tags
    assert default == ["grpo", "canonical"]  # the run's own default, untouched by a sweep without tags
    assert sw.build(data(tags=["x"])).plan()[0].config.tags == ["x"]  # a sweep's tags replace the default


def test_a_two_key_grid_names_its_arms_in_order():
    s = sw.build(data(grid={"beta": [0.1234567, 0.1234568], "n_samples": [32, 48]}, baseline=None))
    assert [a.name for a in s.arms] == ["beta=0.1234567,n_samples=32", "beta=0.1234567,n_samples=48",
                                        "beta=0.1234568,n_samples=32", "beta=0.1234568,n_samples=48"]  # fmt: skip
    assert s.arms[3].flags == {"beta": 0.1234568, "n_samples": 48}


def test_trl_fields_merge_key_by_key():
    assert sw.merge_flags({"trl": {"a": 1, "b": 2}, "beta": 0}, {"trl.b": 3, "beta": 1}, {"trl": {"c": 4}}) == {
        "beta": 1,
        "trl": {"a": 1, "b": 3, "c": 4},
    }
    assert sw.merge_flags({"beta": 0}, {}) == {"beta": 0}


S = "the sweep"


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"colour": 1, "size": 2}, f"{S}: unknown keys colour, size; {KNOWN}"),
        ({"name": None}, f"{S}: name 'None': give the sweep a name of letters, digits, '.', '_' and '-'"),
        ({"name": "-x"}, f"{S}: name '-x': give the sweep a name of letters, digits, '.', '_' and '-'"),
        ({"name": "a" * 65}, f"{S}: name '{'a' * 65}': give the sweep a name of letters, digits, '.', '_' and '-'"),
        ({"name": "b" * 100}, f"{S}: name '{'b' * 80}': give the sweep a name of letters, digits, '.', '_' and '-'"),
        ({"hypothesis": None}, f"{S}: a sweep needs a hypothesis: say what it tests"),
        ({"hypothesis": "  "}, f"{S}: a sweep needs a hypothesis: say what it tests"),
        ({"hypothesis": 3}, f"{S}: hypothesis must be text (in quotes), not int"),
        ({"hypothesis": "a\x1b[2Jb"}, f"{S}: hypothesis holds the control character U+001B; remove it"),
        ({"expected": ["x"]}, f"{S}: expected must be text (in quotes), not list"),
        ({"criteria": 1}, f"{S}: criteria must be text (in quotes), not int"),
        ({"compare": 1.5}, f"{S}: compare must be text (in quotes), not float"),
        ({"baseline": "a\nb"}, f"{S}: baseline holds a line break; remove it"),
        ({"metric": "a\tb"}, f"{S}: metric holds the control character U+0009; remove it"),
        ({"preset": "a\nb"}, f"{S}: preset holds a line break; remove it"),
        ({"base": [1]}, f"{S}: base must be a table ([base] or base = {{...}}), not list"),
        ({"grid": "beta"}, f"{S}: grid must be a table ([grid] or grid = {{...}}), not str"),
        ({"arms": 1}, f"{S}: arms must be a table ([arms] or arms = {{...}}), not int"),
        ({"base": {"trl": 1}}, f"{S} [base]: trl must be a table of TRL fields, e.g. trl = {{delta = 1.5}}"),
        ({"base": {"trl.": 1, "b": 2}}, f"{S} [base]: unknown flags b, trl.; `grpo-lab run --help` lists them"),
        (
            {"base": {"seed": 1, "exp_name": "x"}},
            f"{S} [base]: exp_name, seed are set by the sweep (seeds, arm names); drop them",
        ),  # fmt: skip
        ({"grid": {"output_dir": ["a"]}}, f"{S} [grid]: output_dir are set by the sweep (seeds, arm names); drop them"),
        ({"grid": {"beta": 0.1}}, f"{S} [grid] beta: give a list of values"),
        ({"grid": {"beta": []}}, f"{S} [grid] beta: give a list of values"),
        ({"grid": {"beta": [[0]]}}, f"{S} [grid] beta: each value is one number, text or true/false"),
        ({"grid": {"beta": [0, {"a": 1}]}}, f"{S} [grid] beta: each value is one number, text or true/false"),
        ({"grid": {"beta": [0.1, 0.1]}}, f"{S} [grid]: a value is listed twice; list each value of a flag once"),
        ({"arms": {"x": 1}}, f"{S} [arms.x]: keys are compare, criteria, effect, expected, flags, hypothesis"),
        (
            {"arms": {"x": {"seeds": 1}}},
            f"{S} [arms.x]: keys are compare, criteria, effect, expected, flags, hypothesis",
        ),  # fmt: skip
        ({"arms": {"beta=0": {"hypothesis": 1}}}, f"{S} [arms.beta=0]: hypothesis must be text (in quotes), not int"),
        ({"arms": {"beta=0": {"expected": 1}}}, f"{S} [arms.beta=0]: expected must be text (in quotes), not int"),
        ({"arms": {"beta=0": {"criteria": 1}}}, f"{S} [arms.beta=0]: criteria must be text (in quotes), not int"),
        ({"arms": {"beta=0": {"compare": 1}}}, f"{S} [arms.beta=0]: compare must be text (in quotes), not int"),
        (
            {"arms": {"beta=0": {"flags": 1}}},
            f"{S} [arms.beta=0]: flags must be a table ([flags] or flags = {{...}}), not int",
        ),  # fmt: skip
        (
            {"arms": {"beta=0": {"flags": {"x": 1}}}},
            f"{S} [arms.beta=0]: unknown flags x; `grpo-lab run --help` lists them",
        ),  # fmt: skip
        ({"arms": {"beta=0": {"flags": {"beta": 1}}}}, f"{S} [arms.beta=0]: a grid arm's flags come from the grid"),
        ({"arms": {"x": {}}}, f"{S} [arms.x] is not one of the grid's arms: beta=0, beta=0.1"),
        ({"grid": None}, f"{S}: no arms; add a [grid] or [arms.NAME] tables"),
        ({"grid": {}}, f"{S}: no arms; add a [grid] or [arms.NAME] tables"),
        ({"grid": None, "arms": {"a b": {}}}, f"{S}: arm name 'a b': use letters, digits and . _ = , + -"),
        (
            {"grid": {"loss_type": ["grpo", "a/b"]}},
            f"{S}: arm name 'loss_type=a/b': use letters, digits and . _ = , + -",
        ),  # fmt: skip
        ({"grid": None, "arms": {"x" * 129: {}}}, f"{S}: arm name '{'x' * 129}': use letters, digits and . _ = , + -"),
        (
            {"effect": 0},
            f"{S} [arms.beta=0]: effect must be a positive number in the metric's units, e.g. effect = "
            "0.02 (two points of accuracy); got 0",
        ),  # fmt: skip
        (
            {"effect": True},
            f"{S} [arms.beta=0]: effect must be a positive number in the metric's units, e.g. effect "
            "= 0.02 (two points of accuracy); got True",
        ),  # fmt: skip
        (
            {"effect": math.nan},
            f"{S} [arms.beta=0]: effect must be a positive number in the metric's units, e.g. "
            "effect = 0.02 (two points of accuracy); got nan",
        ),  # fmt: skip
        (
            {"effect": "0.02"},
            f"{S} [arms.beta=0]: effect must be a positive number in the metric's units, e.g. "
            "effect = 0.02 (two points of accuracy); got '0.02'",
        ),  # fmt: skip
        (
            {"arms": {"beta=0.1": {"effect": -1}}},
            f"{S} [arms.beta=0.1]: effect must be a positive number in the "
            "metric's units, e.g. effect = 0.02 (two points of accuracy); got -1",
        ),
        ({"baseline": "beta=1"}, f"{S}: baseline 'beta=1' is not an arm; arms: beta=0, beta=0.1"),
        ({"tags": 3}, f'{S}: tags: give a list of text, e.g. tags = ["sweep"]'),
        ({"tags": ["a", 1]}, f'{S}: tags: give a list of text, e.g. tags = ["sweep"]'),
        ({"tags": ["a\nb"]}, f"{S}: tags holds a line break; remove it"),
        ({"seeds": "x"}, "seeds 'x': give a range like 1-8, a list like 1,3,5, or a TOML list of integers"),
        ({"preset": "nope"}, None),
    ],
)
def test_every_refusal_of_build_word_for_word(over, message):
    text = refusal(sw.build, data(**over))  # a key given as None is left out
    if message is None:
        assert "nope" in text
    else:
        assert text == message


def test_build_names_its_source_in_every_message():
    assert refusal(sw.build, data(colour=1), "s.toml").startswith("s.toml: unknown keys colour;")
    assert refusal(sw.build, data(grid={"beta": [0, 0]}), "s.toml") == (
        "s.toml [grid]: a value is listed twice; list each value of a flag once"
    )


def test_a_control_character_in_an_arm_is_refused():
    over = {"arms": {"beta=0": {"expected": "ok\x07"}}}
    assert refusal(sw.build, data(**over)) == "the sweep [arms.beta=0]: expected holds the control character U+0007; " \
                                              "remove it"  # fmt: skip
    assert sw.build(data(hypothesis="line one\nline two\ttab")).hypothesis == "line one\nline two\ttab"


# --- checking a spec ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"baseline": None, "compare": "diff > 0"}, "sweep t, arm beta=0: a compare criterion needs a baseline arm"),
        ({"compare": "gain > 0"}, "sweep t, arm beta=0: compare: unknown field 'gain'"),
        (
            {"compare": "diff > abc"},
            "sweep t, arm beta=0: compare: diff is compared with 'abc'; criteria compare numbers",
        ),  # fmt: skip
        ({"criteria": "nope > 1"}, "sweep t, arm beta=0: "),
        ({"metric": "accuracy"}, "sweep t: metric 'accuracy' is not one of this sweep's metrics"),
        ({"base": {**TINY, "batch_size": 15}}, "sweep t, arm beta=0, seed 1: --batch_size 15 is not divisible"),
    ],
)
def test_check_refuses_what_a_run_would(over, message):
    assert refusal(sw.build, data(**over)).startswith(message)


def test_parse_compare():
    (c,) = sw.parse_compare("diff > -0.02", "w")
    assert (c.field, c.value) == ("diff", -0.02)
    assert len(sw.parse_compare("ci_low > -0.02 and p_holm < 0.05", "w")) == 2
    assert refusal(sw.parse_compare, "diff >", "w").startswith("w: ")
    assert refusal(sw.parse_compare, "n = x", "w") == "w: compare: n is compared with 'x'; criteria compare numbers"


def test_arm_verdicts():
    arm = sw.Arm("x", {}, "h", compare="diff > 0 and p_holm < 0.05")
    assert sw.arm_verdict(sw.Arm("x", {}, "h"), {"diff": 1}) == sw.run_criteria.Verdict(
        "unchecked", "no compare criterion was given"
    )
    assert sw.arm_verdict(arm, None) == sw.run_criteria.Verdict("unchecked", "this is the baseline arm")
    confirmed = sw.arm_verdict(arm, {"diff": 0.1, "p_holm": 0.01, "other": 5})
    assert confirmed.status == "confirmed"
    assert sw.arm_verdict(arm, {"diff": -0.1, "p_holm": 0.01}).status == "rejected"


def test_spec_methods():
    s = sw.build(data())
    assert s.arm("beta=0").flags == {"beta": 0}
    assert refusal(s.arm, "beta=2") == "sweep t has no arm 'beta=2'; arms: beta=0, beta=0.1"
    assert s.exp_name("beta=0") == "t_beta=0"
    d = s.to_dict()
    assert "effect" not in d["arms"][0] and d["name"] == "t" and d["seeds"] == [1, 2]
    with_effect = sw.build(data(effect=0.03))
    assert with_effect.to_dict()["arms"][0]["effect"] == 0.03
    assert with_effect.digest() != s.digest() == sw.build(data()).digest()
    assert len(s.digest()) == 64 and s.digest() == hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("text", ["{", "[]", '{"arms": 1}', '{"arms": [{"nope": 1}]}', "[" * 100000])
def test_a_damaged_record_is_refused(text):
    assert refusal(sw.from_record, text).startswith("the sweep's recorded spec in the store is damaged (")
    assert refusal(sw.from_record, text).endswith("); it cannot be read back: record the sweep again from its file "
                                                  "under another name")  # fmt: skip


def test_a_record_reads_back_checked():
    s = sw.build(data(effect=0.02))
    back = sw.from_record(json.dumps(s.to_dict()))
    assert back == s and back.arms[0].effect == 0.02
    record = s.to_dict()
    record["arms"][0]["compare"] = "diff > 0"
    record["baseline"] = None
    assert refusal(sw.from_record, json.dumps(record)) == (
        "sweep t, arm beta=0: a compare criterion needs a baseline arm"
    )


# --- sweep files ----------------------------------------------------------------------------------------------

FILE = """name = "f"
hypothesis = "h"
seeds = "1-2"
[base]
model_name = "tiny-arith"
n_samples = 32
batch_size = 16
num_generations = 4
[grid]
beta = [0, 0.1]
"""


def test_load_reads_a_sweep_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(FILE)
    s = sw.load(path)
    assert s.name == "f" and [a.name for a in s.arms] == ["beta=0", "beta=0.1"]
    assert sw.load(str(path)) == s
    path.write_text(FILE.replace("[grid]", "colour = 1\n[grid]"))
    assert refusal(sw.load, path) == f"{path} [base]: unknown flags colour; `grpo-lab run --help` lists them"


def test_load_refusals_word_for_word(tmp_path):
    missing = tmp_path / "none.toml"
    assert refusal(sw.load, missing) == f"no sweep file {missing}; give the path to a .toml file"
    assert refusal(sw.load, tmp_path) == f"sweep file {tmp_path} is not a regular file; give the path to a .toml file"
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    assert refusal(sw.load, bad).startswith(f"sweep file {bad} is not valid TOML: ")
    bad.write_bytes(b"name = '\xff'")
    assert refusal(sw.load, bad) == (
        f"cannot read sweep file {bad}: 'utf-8' codec can't decode byte 0xff in position 8: invalid start byte"
    )
    bad.write_text("seeds = " + "9" * 5000)
    assert refusal(sw.load, bad) == (
        f"sweep file {bad} holds a number too long to read; a count or a seed has at most 20 digits"
    )
    bad.write_text("x = " + "[" * 100000)
    assert refusal(sw.load, bad) == f"sweep file {bad} nests too deeply to read; a sweep file is a page of TOML"
    bad.write_text("# " + "x" * sw.SWEEP_FILE_MAX)
    assert refusal(sw.load, bad) == f"sweep file {bad} is over 1 MB; a sweep file is a page of TOML"
    bad.write_text(FILE + "# " + "x" * (sw.SWEEP_FILE_MAX - len(FILE) - 3) + "\n")
    assert bad.stat().st_size == sw.SWEEP_FILE_MAX
    assert sw.load(bad).name == "f"  # exactly the limit is read


def test_load_refuses_an_unreadable_file(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = tmp_path / "s.toml"
    path.write_text(FILE)
    path.chmod(0)
    assert refusal(sw.load, path) == f"cannot read sweep file {path}: Permission denied"


def test_an_error_is_a_config_error():
    with pytest.raises(ConfigError):
        sw.build(data(colour=1))
    with pytest.raises(ConfigError):
        sw.parse_seeds("x")


# --- what the mutants of the first measurement showed untested ----------------------------------------------


def test_names_may_use_capitals():
    s = sw.build(data(name="Beta.Sweep_2", grid=None, baseline="Base", arms={"Base": {}, "Hot-1": {}}))
    assert s.name == "Beta.Sweep_2" and [a.name for a in s.arms] == ["Base", "Hot-1"]


def test_an_equals_sign_inside_a_value_stays_in_the_value():
    assert sw.parse_grid_option(["loss_type=a=b,c"]) == {"loss_type": ["a=b", "c"]}
    assert sw.parse_set_option(["trl.x=a=b"]) == {"trl.x": "a=b"}


def test_the_preset_applies_to_every_planned_run():
    s = sw.build(data(preset="cpu-quick", base={"model_name": "tiny-arith", "max_steps": 2}))
    assert {(p.config.learning_rate, p.config.n_samples, p.config.epochs) for p in s.plan()} == {(5e-5, 500, 3)}


def test_the_default_metric_is_the_first_arms_first_suite_or_held_out():
    arms = {"a": {"flags": {"eval_suite": "mixed-v1"}}, "b": {"flags": {"eval_suite": "arith-v1"}}}
    assert sw.build(data(grid=None, baseline=None, arms=arms)).metric == "mixed-v1"
    none = sw.build(data(base={**TINY, "eval_suite": "none"}))
    assert none.metric == "held_out" and none.plan()[0].config.eval_suites == []


def test_a_metric_some_arm_is_not_evaluated_on_is_refused():
    arms = {"a": {"flags": {"eval_suite": "mixed-v1"}}, "b": {"flags": {"eval_suite": "arith-v1"}}}
    assert refusal(sw.build, data(grid=None, baseline=None, arms=arms, metric="mixed-v1")) == (
        "sweep t: metric 'mixed-v1' is not one of this sweep's metrics (arm b is not evaluated on it)"
    )
    assert refusal(sw.build, data(grid=None, baseline=None, arms=arms, metric="arith-v1")) == (
        "sweep t: metric 'arith-v1' is not one of this sweep's metrics"
    )


def test_an_arm_trl_refuses_is_refused_naming_the_arm():
    """TRL's own checks of an arm whose GRPO settings are not the seed's (imports TRL: seconds)."""
    text = refusal(sw.build, data(arms={"beta=0.1": {}}, base={**TINY, "trl": {"auto_find_batch_size": True}}))
    assert text.startswith("sweep t, arm beta=0: TRL refuses this configuration: auto_find_batch_size is not supported")


def test_a_damaged_record_names_what_was_wrong():
    assert refusal(sw.from_record, "{") == (
        "the sweep's recorded spec in the store is damaged (JSONDecodeError); it cannot be read back: record the "
        "sweep again from its file under another name"
    )
    assert "(KeyError)" in refusal(sw.from_record, "{}")


def test_a_bad_compare_criterion_in_a_verdict_names_the_arm():
    assert refusal(sw.arm_verdict, sw.Arm("hot", {}, "h", compare="gain > 0"), {"diff": 1}).startswith(
        "hot: compare: unknown field 'gain'"
    )


def test_a_read_error_says_what_the_system_said(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "s.toml"
    path.write_text(FILE)

    def failing(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(sw, "open", failing, raising=False)
    assert refusal(sw.load, path) == f"cannot read sweep file {path}: Input/output error"
