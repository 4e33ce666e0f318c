"""SPEC's size forms: bytes, binary units (powers of 1024) and decimal units (powers of 1000)."""

from __future__ import annotations

import pytest

from kvplan.errors import InputError
from kvplan.sizes import parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("85899345920", 85899345920),
        ("80GiB", 80 * 2**30),
        ("20.45GiB", 20 * 2**30 + 45 * 2**30 // 100),  # floor(20.45 x 2^30) = 21958020300
        ("80GB", 80 * 10**9),
        ("512MiB", 512 * 2**20),
        ("1.5 TiB", 3 * 2**39),
        (4096, 4096),
    ],
)
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1GiB", "0", "12 parsecs", "1e9", True, None, "1.2.3GiB"])
def test_bad_sizes(text):
    with pytest.raises(InputError):
        parse_size(text)
