"""A printable one-page lost-pet poster (PDF, A4 or US Letter): photo, name, breed, a note, the QR tag.

The owner's phone and address appear only when passed in, which the route does only when the owner asked
for them in that request; nothing else about the owner is ever printed (not even in the PDF's metadata).
"""

from __future__ import annotations

import io
import logging
import re
from typing import Literal

import qrcode
from qrcode.constants import ERROR_CORRECT_Q
from reportlab.lib.colors import Color, HexColor, white
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from pawgle.pets.qrtag import found_page_url

log = logging.getLogger(__name__)

PageSize = Literal["A4", "letter"]
PAGE_SIZES: dict[str, tuple[float, float]] = {"A4": A4, "letter": LETTER}

# Bitstream Vera ships inside reportlab: embedded TrueType, so accents and typographic quotes
# (`Dwarf Campbell’s`) print as typed on any printer, and the text stays extractable.
_REGULAR, _BOLD = "PawGleVera", "PawGleVera-Bold"
_BAND = HexColor("#C62828")
_INK = HexColor("#1B1B1B")
_MUTED = HexColor("#555555")
_MARGIN = 36.0  # half an inch: inside every home printer's printable area
_QR_SIZE = 150.0  # about 5.3 cm: scans from arm's length
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

MAX_NOTE_CHARS = 300
MAX_FIELD_CHARS = 100


def lost_pet_poster_pdf(
    *,
    name: str,
    breed: str,
    animal_id: str,
    frontend_origin: str,
    pet_type: str = "",
    note: str = "",
    photo: bytes | None = None,
    phone: str | None = None,
    address: str | None = None,
    page_size: PageSize = "A4",
) -> bytes:
    """The poster as PDF bytes; `phone` and `address` only when the owner explicitly asked to print them."""
    _register_fonts()
    width, height = PAGE_SIZES[page_size]
    name = _clean(name, MAX_FIELD_CHARS) or "Our pet"
    url = found_page_url(frontend_origin, animal_id)

    out = io.BytesIO()
    pdf = Canvas(out, pagesize=(width, height), pageCompression=1)
    pdf.setTitle(f"Lost: {name}")
    pdf.setAuthor("PawGle")
    pdf.setCreator("PawGle")
    pdf.setSubject("Lost pet poster")

    text_width = width - 2 * _MARGIN
    band_bottom = _draw_band(pdf, width, height, _headline(pet_type))
    name_size = _fit(name, _BOLD, 50, text_width)
    name_baseline = band_bottom - 22 - name_size
    _centered(pdf, name, _BOLD, name_size, width, name_baseline, _INK)

    footer_top = _draw_footer(pdf, width, url=url, animal_id=animal_id, origin=frontend_origin, name=name)
    details = _detail_lines(
        breed=_clean(breed, MAX_FIELD_CHARS),
        pet_type=_clean(pet_type, MAX_FIELD_CHARS),
        note=_clean(note, MAX_NOTE_CHARS),
        phone=_clean(phone or "", MAX_FIELD_CHARS),
        address=_clean(address or "", 2 * MAX_FIELD_CHARS),
        width=text_width,
    )
    details_height = sum(size * 1.3 for _, _, size, _ in details)
    y = footer_top + 14 + details_height
    photo_top = name_baseline - name_size * 0.3 - 14
    _draw_photo(pdf, photo, x=_MARGIN, y=y + 14, box_width=text_width, box_height=photo_top - y - 14)
    for text, font, size, colour in details:
        y -= size * 1.3
        _centered(pdf, text, font, size, width, y + size * 0.3, colour)

    pdf.showPage()
    pdf.save()
    return out.getvalue()


def _register_fonts() -> None:
    if _REGULAR not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(_REGULAR, "Vera.ttf"))
        pdfmetrics.registerFont(TTFont(_BOLD, "VeraBd.ttf"))


def _clean(text: str, limit: int) -> str:
    """One printable line: control characters become spaces, runs of spaces collapse, long text is cut."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _headline(pet_type: str) -> str:
    kind = _clean(pet_type, 20).upper()
    return f"LOST {kind}" if kind else "LOST PET"


def _fit(text: str, font: str, largest: float, width: float, smallest: float = 14) -> float:
    """The largest font size (down to `smallest`) at which `text` fits on one line of `width`."""
    size = largest
    while size > smallest and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 1
    return size


def _centered(pdf: Canvas, text: str, font: str, size: float, page_width: float, y: float, colour: Color) -> None:
    pdf.setFont(font, size)
    pdf.setFillColor(colour)
    pdf.drawCentredString(page_width / 2, y, text)


def _draw_band(pdf: Canvas, width: float, height: float, headline: str) -> float:
    """The red band across the top with the headline; returns its lower edge."""
    band_height = 118.0
    pdf.setFillColor(_BAND)
    pdf.rect(0, height - band_height, width, band_height, stroke=0, fill=1)
    size = _fit(headline, _BOLD, 80, width - 2 * _MARGIN)
    _centered(pdf, headline, _BOLD, size, width, height - band_height / 2 - size * 0.36, white)
    return height - band_height


def _detail_lines(
    *, breed: str, pet_type: str, note: str, phone: str, address: str, width: float
) -> list[tuple[str, str, float, Color]]:
    """Breed, the owner's note (wrapped, at most four lines) and, only if given, phone and address."""
    lines: list[tuple[str, str, float, Color]] = []
    described = " · ".join(part for part in (breed, pet_type) if part)
    if described:
        lines.append((described, _BOLD, _fit(described, _BOLD, 24, width), _INK))
    for row in simpleSplit(note, _REGULAR, 16, width)[:4] if note else []:
        lines.append((row, _REGULAR, 16, _INK))
    if phone:
        text = f"Call {phone}"
        lines.append((text, _BOLD, _fit(text, _BOLD, 26, width), _BAND))
    if address:
        lines.extend((row, _REGULAR, 14, _INK) for row in simpleSplit(address, _REGULAR, 14, width)[:2])
    return lines


def _draw_photo(pdf: Canvas, photo: bytes | None, *, x: float, y: float, box_width: float, box_height: float) -> None:
    """The photo scaled to fit the box, centred; a plain frame with a note when there is none."""
    if box_height < 60:
        return
    image = None
    if photo:
        try:
            image = ImageReader(io.BytesIO(photo))
            pixel_width, pixel_height = image.getSize()
        except Exception as exc:  # noqa: BLE001 - a photo that will not draw must not cost the owner the poster
            log.warning("poster photo could not be read, printing without it: %s", type(exc).__name__)
            image = None
    if image is None:
        pdf.setStrokeColor(_MUTED)
        pdf.setDash(6, 4)
        pdf.rect(x, y, box_width, box_height, stroke=1, fill=0)
        pdf.setDash()
        _centered(pdf, "(no photo)", _REGULAR, 16, 2 * x + box_width, y + box_height / 2, _MUTED)
        return
    scale = min(box_width / pixel_width, box_height / pixel_height)
    drawn_width, drawn_height = pixel_width * scale, pixel_height * scale
    left = x + (box_width - drawn_width) / 2
    bottom = y + (box_height - drawn_height) / 2
    pdf.drawImage(image, left, bottom, drawn_width, drawn_height, mask="auto")
    pdf.setStrokeColor(_INK)
    pdf.setLineWidth(1.5)
    pdf.rect(left, bottom, drawn_width, drawn_height, stroke=1, fill=0)


def _draw_footer(pdf: Canvas, width: float, *, url: str, animal_id: str, origin: str, name: str) -> float:
    """The QR tag with what to do beside it, and the site's address; returns the block's upper edge."""
    qr_x, qr_y = _MARGIN, _MARGIN + 16
    _draw_qr(pdf, url, qr_x, qr_y, _QR_SIZE)
    text_x = qr_x + _QR_SIZE + 18
    text_width = width - _MARGIN - text_x
    top = qr_y + _QR_SIZE
    rows: list[tuple[str, str, float, Color]] = [
        (f"Seen {name}?", _BOLD, _fit(f"Seen {name}?", _BOLD, 24, text_width), _INK),
        ("Scan the code with your phone camera,", _REGULAR, 13, _INK),
        ("or open this page:", _REGULAR, 13, _INK),
    ]
    rows += [(row, _BOLD, size, _BAND) for row, size in _url_lines(url, text_width)]
    rows.append((f"Tag ID {animal_id}", _REGULAR, 10, _MUTED))
    rows.append(("The owner is told at once; your details stay private.", _REGULAR, 10, _MUTED))
    y = top - 8
    for text, font, size, colour in rows:
        y -= size * 1.45
        pdf.setFont(font, size)
        pdf.setFillColor(colour)
        pdf.drawString(text_x, y, text)
    site = origin.rstrip("/").split("://", 1)[-1]
    _centered(pdf, f"PawGle · {site} · reuniting lost pets with their owners", _REGULAR, 9, width, _MARGIN, _MUTED)
    return top


def _url_lines(url: str, width: float) -> list[tuple[str, float]]:
    """The URL on one line if it fits at a readable size, else broken after `/found/` (never mid-id)."""
    size = _fit(url, _BOLD, 12, width, smallest=9)
    if pdfmetrics.stringWidth(url, _BOLD, size) <= width:
        return [(url, size)]
    head, _, animal_id = url.rpartition("/")
    head += "/"
    size = min(_fit(head, _BOLD, 12, width, smallest=7), _fit(animal_id, _BOLD, 12, width, smallest=7))
    return [(head, size), (animal_id, size)]


def _draw_qr(pdf: Canvas, url: str, x: float, y: float, size: float) -> None:
    """The tag's QR code as vector squares (sharp at any printer resolution), same code as the tag PNG."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, border=4)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()  # border included
    module = size / len(matrix)
    pdf.setFillColor(white)
    pdf.rect(x, y, size, size, stroke=0, fill=1)
    pdf.setFillColor(HexColor("#000000"))
    for row_index, row in enumerate(matrix):
        top = y + size - (row_index + 1) * module
        start = None
        for col_index, dark in enumerate([*row, False]):
            if dark and start is None:
                start = col_index
            elif not dark and start is not None:
                pdf.rect(x + start * module, top, (col_index - start) * module, module, stroke=0, fill=1)
                start = None
