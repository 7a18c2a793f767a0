from __future__ import annotations

import io
import math
import re

import pytest
import zxingcpp
from PIL import Image

from pawgle.pets.qrtag import (
    ANIMAL_ID_PREFIX,
    found_page_url,
    is_animal_id,
    new_animal_id,
    pet_tag_png,
)


def decode_qr(png: bytes) -> list[str]:
    return [code.text for code in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_animal_ids_are_random_url_safe_and_carry_at_least_96_bits() -> None:
    ids = {new_animal_id() for _ in range(5000)}
    assert len(ids) == 5000
    for animal_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", animal_id)
        assert is_animal_id(animal_id)
    random_part = len(next(iter(ids))) - len(ANIMAL_ID_PREFIX)
    assert random_part * math.log2(62) >= 96
    # every base62 character shows up: the random part is not a narrower alphabet (hex, digits)
    assert len(set("".join(i[len(ANIMAL_ID_PREFIX) :] for i in ids))) == 62


@pytest.mark.parametrize("value", ["ANI123456", "ANI1a2b", "ani" + "a" * 22, "ANI" + "a" * 21 + "/", ""])
def test_legacy_and_malformed_ids_are_not_taken_for_ours(value: str) -> None:
    assert not is_animal_id(value)


@pytest.mark.parametrize("origin", ["https://pawgle.example", "https://pawgle.example/", "http://localhost:3000"])
def test_the_tag_png_decodes_to_exactly_the_found_page(origin: str) -> None:
    animal_id = new_animal_id()
    png = pet_tag_png(origin, animal_id)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert decode_qr(png) == [f"{origin.rstrip('/')}/found/{animal_id}"]


@pytest.mark.parametrize("animal_id", ["a/b", "x?y=1", "ANI 1", ""])
def test_an_id_that_is_not_path_safe_never_reaches_a_url(animal_id: str) -> None:
    with pytest.raises(ValueError, match="URL-path-safe"):
        found_page_url("https://pawgle.example", animal_id)
