"""The YAML reader gives exactly what PyYAML's safe loader gives, and refuses aliases and deep nesting."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from selection.inputs.documents import MAX_YAML_DEPTH, parse_yaml
from selection.inputs.errors import BadInputError

CATALOGUE = [
    "",
    "# only a comment\n",
    "targets:\n  yes:\n  - yes/a.wav\nnontargets:\n- cat/b.wav\n",
    "targets: {'yes': [yes/a.wav]}\nnontargets: [cat/b.wav]\n",
    'targets: {"no": ["no/a.wav"], off: [off/b.wav]}\nnontargets: []\n',
    "targets: {on: [on/x.wav]}\nnontargets: ~\n",
    "targets: {1: [a/b.wav], 2.5: [c/d.wav], null: [e/f.wav]}\nnontargets: [2001-12-14, 0x1F, 0o17, 1_000, .inf]\n",
    "a: 1\na: 2\nb: [1, 2]\n",
    "key: value\n---\nother: doc\n",
    "!!python/object:os.system {}\n",
    "a: !!str 5\nb: !!int '7'\nc: ! 12\n",
    "<<: {a: 1}\nb: 2\n",
    "? [complex, key]\n: value\n",
    "a: 'multi\n  line'\nb: |\n  block\n  text\nc: >\n  folded\n  text\n",
    "list:\n- - nested/a.wav\n  - nested/b.wav\n- {k: v}\n",
    "yes/a.wav: plain/with/slashes\n",
    "a: =\nb: '~'\nc: ''\nd:\ne: -1\nf: +12\ng: 1:20\nh: 190:20:30.15\n",
    "'quoted key': \"esc\\taped\\u00e9\"\n",
    "[a, b, {c: d}]\n",
    "just a scalar\n",
    "- 0b1010\n- 012\n- 1e3\n- 1.0e+3\n- .NaN\n- Yes\n- NO\n- TRUE\n",
    "targets: {w: [w/a.wav]}\nnontargets: [n/a.wav]\nextra: {deep: {er: {than: {this: [1]}}}}\n",
    "a: [unclosed\n",
    "a: b: c\n",
    "\t- tab\n",
]


@pytest.mark.parametrize("text", CATALOGUE)
def test_same_result_as_the_safe_loader(text: str):
    try:
        expected = ("ok", yaml.safe_load(text))
    except yaml.YAMLError as error:
        expected = ("error", type(error).__name__)
    try:
        got = ("ok", parse_yaml(text))
    except yaml.YAMLError as error:
        got = ("error", type(error).__name__)
    assert got == expected


scalars = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["yes", "No", "on", "null", "~", "1", "0x10", "1:20", "2020-01-01", "<<", "=", "a/b.wav", ""]),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8) | st.sampled_from(["yes", "1"]), children)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(documents, st.booleans())
def test_random_documents_match_the_safe_loader(document, flow: bool):
    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    assert parse_yaml(text) == yaml.safe_load(text)


def test_aliases_and_anchors_are_refused():
    for text in ("a: &x [1]\nb: *x\n", "a: &x 1\n", "- &x [a/b.wav]\n"):
        with pytest.raises(BadInputError, match="anchors and aliases"):
            parse_yaml(text, name="doc.yaml")


def test_nesting_is_bounded():
    deep_enough = "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH
    assert parse_yaml(deep_enough) == yaml.safe_load(deep_enough)
    with pytest.raises(BadInputError, match="nested more than"):
        parse_yaml("[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1))
    with pytest.raises(BadInputError, match="nested more than"):
        parse_yaml("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)))
