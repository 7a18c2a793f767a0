from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from pawgle.common.photos import process_photo
from pawgle.pets.poster import MAX_NOTE_CHARS, lost_pet_poster_pdf
from pawgle.pets.qrtag import new_animal_id

ORIGIN = "https://pawgle.example"
PAGE_POINTS = {"A4": (595, 842), "letter": (612, 792)}
needs_pdftoppm = pytest.mark.skipif(
    shutil.which("pdftoppm") is None,
    reason="pdftoppm is not installed (apt-get install -y poppler-utils); the rendered-page checks need it",
)


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A real photo as the pets service stores it: through the shared photo pipeline."""
    return process_photo((Path(__file__).parent / "data" / "dog2.4.jpg").read_bytes()).data


def poster(photo: bytes | None, **overrides: object) -> tuple[bytes, str]:
    animal_id = new_animal_id()
    fields: dict[str, object] = {
        "name": "Hachi",
        "breed": "Shiba Inu",
        "pet_type": "Dog",
        "note": "Red coat, white chest, shy: please do not chase him. Blue collar.",
        "photo": photo,
        "animal_id": animal_id,
        "frontend_origin": ORIGIN,
    }
    fields.update(overrides)
    return lost_pet_poster_pdf(**fields), animal_id  # type: ignore[arg-type]


def page_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return str(reader.pages[0].extract_text())


def render(pdf: bytes, tmp_path: Path, dpi: int = 100) -> Image.Image:
    source = tmp_path / "poster.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(source), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    return Image.open(tmp_path / "page.png")


@pytest.mark.parametrize("page_size", ["A4", "letter"])
def test_the_poster_is_one_page_with_name_breed_note_and_the_found_url(photo: bytes, page_size: str) -> None:
    pdf, animal_id = poster(photo, page_size=page_size)
    reader = PdfReader(io.BytesIO(pdf))
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == PAGE_POINTS[page_size]
    text = page_text(pdf)
    for expected in ("LOST DOG", "Hachi", "Shiba Inu", "please do not chase him", f"{ORIGIN}/found/", animal_id):
        assert expected in text
    assert len(reader.pages[0].images) == 1  # the photo (the QR code is vector squares)


@needs_pdftoppm
@pytest.mark.parametrize("page_size", ["A4", "letter"])
def test_the_qr_code_on_the_printed_page_leads_to_the_found_page(photo: bytes, page_size: str, tmp_path: Path) -> None:
    pdf, animal_id = poster(photo, page_size=page_size)
    page = render(pdf, tmp_path)
    expected = [points * 100 / 72 for points in PAGE_POINTS[page_size]]
    assert all(abs(got - want) <= 1.5 for got, want in zip(page.size, expected, strict=True))
    codes = zxingcpp.read_barcodes(page)
    assert [code.text for code in codes] == [f"{ORIGIN}/found/{animal_id}"]


@needs_pdftoppm
def test_the_photo_is_printed_in_colour_in_the_middle_of_the_page(photo: bytes, tmp_path: Path) -> None:
    page = render(poster(photo)[0], tmp_path, dpi=40).convert("RGB")
    width, height = page.size
    red, green, blue = page.getpixel((width // 2, int(height * 0.45)))  # type: ignore[misc]
    assert (red, green, blue) != (255, 255, 255)
    band_red, band_green, _ = page.getpixel((5, 5))  # type: ignore[misc]  # the red headline band
    assert band_red > 150
    assert band_green < 80


def test_owner_contact_details_are_printed_only_when_passed(photo: bytes) -> None:
    without = page_text(poster(photo)[0])
    assert "Call" not in without
    assert "+49" not in without
    with_contact = page_text(poster(photo, phone="+49 30 1234567", address="Parkstraße 5, Berlin")[0])
    assert "Call +49 30 1234567" in with_contact
    assert "Parkstraße 5, Berlin" in with_contact


def test_the_pdf_metadata_names_no_one(photo: bytes) -> None:
    pdf, _ = poster(photo, phone="+49 30 1234567")
    info = PdfReader(io.BytesIO(pdf)).metadata
    assert info is not None
    assert info.author == "PawGle"
    assert info.title == "Lost: Hachi"
    assert "+49" not in " ".join(str(v) for v in info.values())


def test_the_web_apps_own_breed_names_print_as_typed(photo: bytes) -> None:
    text = page_text(poster(photo, name="Müsli", breed="Dwarf Campbell’s", pet_type="Hamster")[0])
    assert "LOST HAMSTER" in text
    assert "Müsli" in text
    assert "Dwarf Campbell’s" in text


def test_hostile_or_overlong_text_is_flattened_and_capped(photo: bytes) -> None:
    pdf, _ = poster(photo, name="Rex\x00\x1b[31m", note="word " * 400 + "\nEND-OF-NOTE")
    text = page_text(pdf)
    assert "\x00" not in text
    assert "\x1b" not in text
    assert "Rex" in text
    assert "END-OF-NOTE" not in text  # past MAX_NOTE_CHARS and the four lines the note may take
    assert text.count("word") < MAX_NOTE_CHARS // 5


@pytest.mark.parametrize("broken", [None, b"", b"not an image at all"])
def test_a_missing_or_unreadable_photo_still_gives_a_poster(broken: bytes | None) -> None:
    pdf, animal_id = poster(broken)
    text = page_text(pdf)
    assert "(no photo)" in text
    assert animal_id in text
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 0
