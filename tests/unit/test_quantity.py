from __future__ import annotations

from fractions import Fraction

import pytest

from kubectl_omepvc.core.quantity import (
    MAX_BYTES,
    QuantityError,
    format_bytes_as_quantity,
    parse_bytes,
    parse_quantity,
)
from tests.expect import raises_exactly

GI = 2**30

VALID = [
    ("100Gi", 100 * GI),
    ("1.5T", 1_500_000_000_000),
    ("500M", 500_000_000),
    ("1e3", 1000),
    ("1E3", 1000),
    ("1e+3", 1000),
    ("0.5Ki", 512),
    ("1Ki", 1024),
    ("1Mi", 2**20),
    ("2Ti", 2 * 2**40),
    ("1Pi", 2**50),
    ("1Ei", 2**60),
    ("1k", 1000),
    ("1G", 10**9),
    ("1P", 10**15),
    ("1E", 10**18),  # exa, not an exponent
    ("123", 123),
    ("0", 0),
    ("007", 7),
    ("+5Gi", 5 * GI),
    ("1.", 1),
    (".5Ki", 512),
    ("1.Gi", GI),
    ("1m", 1),  # a thousandth of a byte rounds up to one byte
    ("1500m", 2),
    ("1n", 1),
    ("1u", 1),
    ("1.0000001", 2),
    ("12e-1", 2),
    ("1.5Gi", 1536 * 2**20),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[v[0] for v in VALID])
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


EXACT = [
    ("1m", Fraction(1, 1000)),
    ("-1.5Gi", Fraction(-3 * 2**29)),
    ("2.5e-3", Fraction(1, 400)),
    ("-0", Fraction(0)),
]


@pytest.mark.parametrize(("text", "expected"), EXACT, ids=[e[0] for e in EXACT])
def test_parse_quantity_is_exact(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


INVALID = [
    "",
    "Gi",
    "abc",
    "1 Gi",
    " 1Gi",
    "1Gi ",
    "1K",  # Kubernetes spells kilo `k`
    "1KB",
    "1Gb",
    "1GB",
    "1gi",
    "1g",
    "1Ki1",
    "1e",
    "1e3Gi",
    "1.2.3",
    ".",
    "-",
    "+",
    "e3",
    "1,5Gi",
    "0x10",
    "1_000",
    "١٢",  # non-ASCII digits are not digits to Kubernetes
    "1Yi",
    "1Zi",
]


@pytest.mark.parametrize("text", INVALID, ids=[repr(t) for t in INVALID])
def test_invalid_quantity_names_the_value(text: str) -> None:
    with pytest.raises(QuantityError) as err:
        parse_bytes(text)
    assert repr(text) in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1Gi", "negative"),
        ("-1m", "negative"),
        ("8Ei", "too large"),
        ("10E", "too large"),
        ("1e41", "out of range"),
        ("1e-41", "out of range"),
        ("1e999999999", "out of range"),
    ],
    ids=["negative", "negative-milli", "8Ei", "10E", "exp-41", "exp-minus-41", "huge-exponent"],
)
def test_unusable_sizes(text: str, message: str) -> None:
    with pytest.raises(QuantityError, match=message):
        parse_bytes(text)


def test_largest_size_accepted() -> None:
    assert parse_bytes(str(MAX_BYTES)) == MAX_BYTES
    assert parse_bytes("7Ei") == 7 * 2**60


FORMATS = [
    (0, "0"),
    (1, "1Gi"),
    (1000, "1Gi"),
    (1024, "1Ki"),
    (3072, "3Ki"),
    (GI, "1Gi"),
    (1536 * 2**20, "1536Mi"),
    (10 * 2**40, "10Ti"),
    (2**60, "1Ei"),
    (10**9, "1Gi"),
    (GI + 1, "2Gi"),
    (15 * 10**9, "14Gi"),
    (1025, "1Gi"),
]


@pytest.mark.parametrize(("n", "expected"), FORMATS, ids=[str(f[0]) for f in FORMATS])
def test_format_bytes_as_quantity(n: int, expected: str) -> None:
    assert format_bytes_as_quantity(n) == expected


@pytest.mark.parametrize("n", [1, 999, 1024, 10**9, 123_456_789_012, 2**45 + 7], ids=str)
def test_formatted_size_holds_the_bytes(n: int) -> None:
    assert parse_bytes(format_bytes_as_quantity(n)) >= n


def test_format_rejects_negative() -> None:
    with raises_exactly(ValueError, match="-5"):
        format_bytes_as_quantity(-5)
