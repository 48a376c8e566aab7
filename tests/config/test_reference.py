"""docs/configuration.md is the generated configuration reference, and it covers the whole schema."""

import dataclasses
import re
from pathlib import Path
from typing import Optional, get_args, get_type_hints

from rlinf_isaac.config import reference
from rlinf_isaac.config.schema import Config

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def _reachable(tp, seen):
    """Every dataclass reachable from annotation ``tp`` (also inside Optional / dict / list)."""
    if isinstance(tp, type) and "registered_subclasses" in vars(tp):  # actor.model: every registered policy
        for member in tp.registered_subclasses():
            _reachable(member, seen)
        return
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if tp in seen:
            return
        seen.append(tp)
        for hint in get_type_hints(tp).values():
            _reachable(hint, seen)
        return
    for arg in get_args(tp):
        _reachable(arg, seen)


def _sections(text):
    """``{dataclass name: section text}`` split at the '## ... — Name' headings."""
    out = {}
    for chunk in re.split(r"^## ", text, flags=re.M)[1:]:
        heading = chunk.splitlines()[0]
        out[heading.rsplit("— ", 1)[-1].strip()] = chunk
    return out


def test_committed_reference_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == reference.render(), (
        f"docs/configuration.md is out of date with rlinf_isaac/config/schema.py; regenerate it: "
        f"{reference.COMMAND}"
    )


def test_every_field_of_every_reachable_dataclass_is_documented():
    classes = []
    _reachable(Config, classes)
    assert len(classes) >= 10
    sections = _sections(reference.render())
    assert set(sections) == {c.__name__ for c in classes}
    for cls in classes:
        text = sections[cls.__name__]
        rows = [ln for ln in text.splitlines() if ln.startswith("| `")]
        keys = [ln.split("`")[1] for ln in rows]
        for f in dataclasses.fields(cls):
            assert any(k == f.name or k.endswith("." + f.name) for k in keys), f"{cls.__name__}.{f.name} missing"


def _row(text, key):
    rows = [ln for ln in text.splitlines() if ln.startswith(f"| `{key}` |")]
    assert len(rows) == 1, f"expected one row for {key}, found {len(rows)}"
    return [c.strip() for c in rows[0].strip("|").split(" | ")]


def test_hand_checked_rows():
    text = reference.render()
    assert _row(text, "algorithm.gamma")[1:3] == ["float", "`0.99`"]
    key, typ, default, desc = _row(text, "algorithm.adv_type")
    assert (typ, default) == ("str", "`gae`") and "registered names" in desc
    key, typ, default, desc = _row(text, "runner.max_time_s")
    assert (typ, default) == ("float or null", "`null`")
    assert desc.startswith("stop after the global step during which")  # comment lines above the field
    assert _row(text, "cluster.ray_address")[3].startswith("None: start a local Ray")  # trailing comment
    assert _row(text, "runner.max_steps")[2] == "required"
    # a dataclass used at two paths is one section, its keys name both
    assert _row(text, r"env.<train\|eval>.video_cfg.fps")[1:3] == ["int", "`20`"]
    assert "[GR00TPolicyConfig](#gr00tpolicyconfig)" in _row(text, "actor.model")[1]  # the registered policies
    assert _row(text, "actor.model.noise_method")[1:3] == ["one of `flow_sde`, `flow_noise`", "`flow_sde`"]


def test_main_prints_the_reference(capsys):
    assert reference.main([]) == 0
    assert capsys.readouterr().out == reference.render()
    assert reference.main(["--bad"]) == 2


def test_field_comments_of_a_dataclass_defined_here():
    @dataclasses.dataclass
    class Example:
        # first line above
        # second line above
        a: int = 1  # trailing
        b: str = "x"

        c: float = 0.5  # only trailing

    comments = reference.field_comments(Example)
    assert comments == {"a": "first line above second line above trailing", "b": "", "c": "only trailing"}


@dataclasses.dataclass
class _Leaf:
    x: int = 0  # a leaf value


@dataclasses.dataclass
class _Other:
    y: str = "y"


@dataclasses.dataclass
class _Third:
    z: bool = True


@dataclasses.dataclass
class _Root:
    """A schema with dataclasses behind Optional, dict and list annotations."""

    maybe: Optional[_Leaf] = None
    named: dict[str, _Other] = dataclasses.field(default_factory=dict)
    many: list[_Third] = dataclasses.field(default_factory=list)
    again: _Leaf = dataclasses.field(default_factory=_Leaf)


def test_nested_dataclasses_inside_generic_annotations_are_walked():
    sections = reference.collect_sections(_Root)
    assert [s.cls for s in sections] == [_Root, _Leaf, _Other, _Third]
    assert [s.prefix for s in sections] == ["", "<maybe|again>", "named.<name>", "many.[i]"]
    text = reference.render(_Root)
    assert text == reference.render(_Root)  # deterministic
    assert "| `<maybe\\|again>.x` | int | `0` | a leaf value |" in text
    assert "| `named.<name>.y` | str | `y` |  |" in text
    assert "| `maybe` | [_Leaf](#_leaf) or null | `null` |  |" in text
