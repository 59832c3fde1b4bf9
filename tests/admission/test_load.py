"""The manifest loader refuses what could make two readers disagree or exhaust memory."""

from __future__ import annotations

import json

import pytest

from stockade.admission import load_documents
from stockade.admission._load import MAX_BYTES, MAX_DEPTH, MAX_DOCUMENTS
from stockade.errors import InputError

pytestmark = pytest.mark.guarantee("admit-fail-closed-input")


@pytest.fixture(autouse=True, params=["libyaml", "pure-python"])
def yaml_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every loader test on both parsers: libyaml (fast path) and PyYAML's own."""
    from stockade.admission import _load

    if request.param == "libyaml" and _load._CBase is None:
        pytest.skip("PyYAML was built without libyaml: only the pure-Python parser exists here")
    if request.param == "pure-python":
        monkeypatch.setattr(_load, "_CBase", None)
    return str(request.param)


POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n"


def test_a_multi_document_stream_keeps_each_document_position() -> None:
    text = f"---\n{POD}---\n---\n{POD}"
    docs = load_documents(text, "f.yaml")
    assert [d.index for d in docs] == [0, 2]
    assert all(d.source == "f.yaml" for d in docs)


def test_json_input_is_one_document_or_an_array() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "spec": {}}
    assert [d.obj for d in load_documents(json.dumps(obj), "p.json")] == [obj]
    assert len(load_documents(json.dumps([obj, obj]), "p.json")) == 2


def test_a_v1_list_is_expanded_into_its_items() -> None:
    obj = {"apiVersion": "v1", "kind": "List", "items": [{"kind": "Pod"}, {"kind": "Job"}]}
    docs = load_documents(json.dumps(obj), "l.json")
    assert [(d.index, d.item, d.obj["kind"]) for d in docs] == [(0, 0, "Pod"), (0, 1, "Job")]


def test_timestamps_stay_strings() -> None:
    (doc,) = load_documents("kind: Pod\nmetadata: {name: 2024-01-01}\n", "t.yaml")
    assert doc.obj["metadata"]["name"] == "2024-01-01"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x {b: 1}\nc: *x\n", "anchors"),
        ("a: [&x 1, *x]\n", "anchors"),
        ("a: 1\n<<: {a: 2}\n", "not valid YAML"),  # merge keys: refused, not merged
        ("kind: Pod\nkind: Job\n", "duplicate key 'kind'"),
        ("spec:\n  hostPID: false\n  hostPID: true\n", "duplicate key 'hostPID'"),
        ("{1: a}\n", "not a string"),
        ("a: !!python/object:os.system {}\n", "not valid YAML"),
        ("a: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("just text\n", "expected a mapping"),
        ('{"kind": "Pod", "kind": "Job"}', "duplicate key"),
        ('{"a": NaN}', "not valid JSON"),
        ("[1]", "expected a mapping"),
        ('{"apiVersion": "v1", "kind": "List", "items": 3}', "without an items list"),
    ],
)
def test_unsafe_or_ambiguous_input_is_refused(text: str, message: str) -> None:
    name = "bad.json" if "JSON" in message or text.startswith(('{"', "[1]")) else "bad.yaml"
    with pytest.raises(InputError, match=message):
        load_documents(text, name)


def test_a_billion_laughs_bomb_is_refused_before_expansion() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    with pytest.raises(InputError, match="anchors"):
        load_documents("\n".join(lines), "lol.yaml")


def test_deep_nesting_is_refused() -> None:
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    with pytest.raises(InputError, match="nesting"):
        load_documents(f"a: {deep}\n", "deep.yaml")
    with pytest.raises(InputError, match="nesting"):
        load_documents('{"a": ' + deep + "}", "deep.json")
    with pytest.raises(InputError):
        load_documents('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "deeper.json")


def test_oversized_input_and_too_many_documents_are_refused() -> None:
    with pytest.raises(InputError, match="larger than"):
        load_documents("a: " + "x" * MAX_BYTES, "big.yaml")
    with pytest.raises(InputError, match="more than"):
        load_documents("---\na: 1\n" * (MAX_DOCUMENTS + 1), "many.yaml")
