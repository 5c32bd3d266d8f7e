"""Kubernetes resource quantities (`100Gi`, `1.5T`, `1e3`) as byte counts, and back.

The grammar is the API server's (k8s.io/apimachinery resource.Quantity):
`[+-]<digits>[.<digits>]<suffix>` where the suffix is a binary one (`Ki`..`Ei`), a decimal one
(`n u m k M G T P E`, or none) or a decimal exponent (`e3`, `E-2`). Nothing else is accepted:
no spaces, no `K`, no `KB`, no `Gb`. Values are kept exact (Fraction) until the final ceiling.
"""

from __future__ import annotations

import re
from fractions import Fraction

BINARY_SUFFIXES: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
DECIMAL_SUFFIXES: dict[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}

# A number needs at least one digit: "1", "1.5", "1.", ".5".
_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<exp>[eE][+-]?[0-9]+)|(?P<suffix>[KMGTPE]i|[numkMGTPE]?))"
)
# Far beyond any storage size; keeps `1e999999999` from building a huge integer.
_MAX_EXPONENT = 40
# The API server stores quantities in an int64 of the base unit for most paths.
MAX_BYTES = 2**63 - 1


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity, or not usable as a size."""


def parse_quantity(text: str) -> Fraction:
    """The exact value of a quantity string; raises QuantityError naming `text`."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise QuantityError(
            f"{text!r} is not a Kubernetes quantity: use a number with an optional suffix "
            "such as 100Gi, 500M, 1.5T or 1e9 (binary Ki Mi Gi Ti Pi Ei, decimal k M G T P E)"
        )
    value = Fraction(match.group("number"))
    if match.group("exp") is not None:
        exponent = int(match.group("exp")[1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(f"{text!r}: exponent {exponent} is out of range")
        value *= Fraction(10) ** exponent
    else:
        suffix = match.group("suffix")
        value *= BINARY_SUFFIXES[suffix] if suffix in BINARY_SUFFIXES else DECIMAL_SUFFIXES[suffix]
    return -value if match.group("sign") == "-" else value


def parse_bytes(text: str) -> int:
    """A quantity as a whole number of bytes, rounded up (`1m` → 1, `0.5Ki` → 512)."""
    value = parse_quantity(text)
    if value < 0:
        raise QuantityError(f"{text!r}: a size cannot be negative")
    # Ceiling without floats: -(-a // b).
    result = -(-value.numerator // value.denominator)
    if result > MAX_BYTES:
        raise QuantityError(f"{text!r} is too large: at most {MAX_BYTES} bytes (8Ei - 1)")
    return result


def format_bytes_as_quantity(n: int) -> str:
    """`n` bytes in the largest binary unit that divides it exactly, else in Gi rounded up.

    `1073741824` → `1Gi`, `1536 * 2**20` → `1536Mi`, `10**9` → `1Gi` (rounded up, so a claim
    made from it is never smaller than the data).
    """
    if n < 0:
        raise ValueError(f"a size cannot be negative: {n}")
    if n == 0:
        return "0"
    for suffix, unit in reversed(BINARY_SUFFIXES.items()):
        if n % unit == 0:
            return f"{n // unit}{suffix}"
    gib = BINARY_SUFFIXES["Gi"]
    return f"{-(-n // gib)}Gi"
