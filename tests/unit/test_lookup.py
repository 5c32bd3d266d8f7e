"""The hint for a name that is not where the user looked (pure part)."""

from __future__ import annotations

from kubectl_omepvc.api.lookup import suggestion


def test_another_namespace_comes_first() -> None:
    assert suggestion("llama", ["team-a"], ["llama2"]) == "llama is in team-a: pass -n team-a"


def test_close_names_when_it_is_nowhere() -> None:
    assert suggestion("lama", [], ["llama", "lima"]) == "did you mean llama, lima?"


def test_nothing_to_say() -> None:
    assert suggestion("x", [], []) is None


def test_many_namespaces_are_counted() -> None:
    said = suggestion("llama", ["a", "b", "c", "d", "e"], [])
    assert said == "llama is in a, b, c and 2 more: pass -n a"
