"""Argv templates: plain placeholders only; nothing reaches a Python object."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitstop.domain.argv_templates import (
    DeviceFields,
    MissingLabel,
    TemplateError,
    parse_element,
    render,
    template_problems,
)

LEAF1 = DeviceFields(
    name="leaf1",
    fabric="dc1",
    role="leaf",
    host="10.0.0.1",
    port="22",
    campaign="roll",
    labels={"rack": "r1", "bench.sleep_s": "0.5"},
)


def test_every_plain_field_renders_and_braces_can_be_literal() -> None:
    template = [
        "upgrade",
        "{name}@{host}:{port}",
        "--fabric={fabric}",
        "{role}/{campaign}",
        "--rack={labels[rack]}",
        "{labels[bench.sleep_s]}",
        "{{literal}}",
    ]
    assert render(template, LEAF1) == [
        "upgrade",
        "leaf1@10.0.0.1:22",
        "--fabric=dc1",
        "leaf/roll",
        "--rack=r1",
        "0.5",
        "{literal}",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "{labels.__class__}",
        "{name.__class__}",
        "{name.__class__.__mro__}",
        "{labels[x].y}",
        "{labels[rack][0]}",
        "{labels}",
        "{labels[]}",
        "{0}",
        "{}",
        "{name!r}",
        "{name:>10}",
        "{name:{fabric}}",
        "{nmae}",
        "{",
        "}",
        "tail {name",
    ],
)
def test_anything_but_a_plain_placeholder_is_refused(bad: str) -> None:
    with pytest.raises(TemplateError):
        parse_element(bad)
    assert template_problems(["upgrade", bad])[0][0] == 1
    with pytest.raises(TemplateError, match=re.escape(f"argument 1 {bad!r}")):
        render(["upgrade", bad], LEAF1)


def test_a_refusal_names_the_placeholder_and_what_is_allowed() -> None:
    [(index, why)] = template_problems(["up", "{labels.__class__}"])
    assert index == 1
    assert why.startswith("placeholder {labels.__class__} is not allowed: use {name}")


def test_a_missing_label_fails_naming_the_label() -> None:
    with pytest.raises(MissingLabel, match="no label 'row'") as info:
        render(["up", "{labels[row]}"], LEAF1)
    assert info.value.label == "row"


ALPHABET = "{}[]().!:_ab019" + "namelbsfric"


@given(st.lists(st.text(alphabet=ALPHABET, max_size=24), min_size=1, max_size=4))
def test_no_template_renders_anything_but_its_text_and_field_values(argv: list[str]) -> None:
    """Whatever the placeholders, a rendered argument holds only the template's own
    characters and the device's values: never a Python repr (``<class 'dict'>``,
    ``{'rack': 'r1'}``), whose quotes, angle brackets or spaces are in neither."""
    try:
        rendered = render(argv, LEAF1)
    except (TemplateError, MissingLabel):
        return
    values = "".join([LEAF1.name, LEAF1.fabric, LEAF1.role, LEAF1.host, LEAF1.port])
    allowed = set(ALPHABET) | set(values + LEAF1.campaign + "".join(LEAF1.labels.values()))
    for arg in rendered:
        assert set(arg) <= allowed, arg
        assert not {"'", "<", " "} & set(arg)
