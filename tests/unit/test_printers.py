"""Tables, colours and human units look like kubectl's."""

from __future__ import annotations

import io

import pytest

from kubectl_omepvc import printers


def test_table_is_plain_kubectl_style() -> None:
    text = printers.table(["name", "state"], [["llama", "Ready"], ["qwen-long-name", None]])
    assert text.splitlines() == [
        "NAME             STATE",
        "llama            Ready",
        "qwen-long-name   -",
    ]


def test_table_without_headers() -> None:
    assert printers.table(["a"], [["x"]], no_headers=True) == "x"


def test_table_pads_on_visible_width_with_colour() -> None:
    palette = printers.Palette(enabled=True)
    text = printers.table(["s", "n"], [[palette.good("Ready"), "1"], ["Failed", "2"]])
    plain = [line.replace("\033[32m", "").replace("\033[0m", "") for line in text.splitlines()]
    assert plain == ["S        N", "Ready    1", "Failed   2"]


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "env", "enabled"),
    [
        (FakeTTY(), {}, True),
        (FakeTTY(), {"NO_COLOR": "1"}, False),
        (io.StringIO(), {}, False),
    ],
    ids=["tty", "no-color", "pipe"],
)
def test_palette_only_on_a_terminal(
    stream: io.StringIO, env: dict[str, str], enabled: bool
) -> None:
    palette = printers.palette_for(stream, env)
    assert palette.enabled is enabled
    assert (palette.bad("x") != "x") is enabled


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "<unknown>"),
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (3600, "60m"),
        (4 * 3600, "4h"),
        (3 * 86400, "3d"),
        (800 * 86400, "2y"),
    ],
)
def test_human_age(seconds: float | None, text: str) -> None:
    assert printers.human_age(seconds) == text


def test_human_bytes() -> None:
    assert printers.human_bytes(512) == "512B"
    assert printers.human_bytes(3 * 1024**3) == "3.0GiB"
