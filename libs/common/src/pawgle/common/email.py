"""One normal form for e-mail addresses, used for uniqueness, lookup and as the address mail is sent to.

Two spellings that a mailbox provider treats as the same address must be one account: otherwise an
address written with look-alike characters (`K` as U+212A KELVIN SIGN) squats the plain one, and links
requested for the plain address are mailed to whoever holds the look-alike. So an address is put in Unicode
NFKC form (compatibility characters become the ordinary ones), case-folded, and its domain converted to
its IDNA (UTS 46) ASCII form. Control, format and whitespace characters anywhere are refused outright: a
NUL or CR/LF would otherwise end up raw in a mail header.
"""

from __future__ import annotations

import unicodedata

import idna

from pawgle.common.errors import BadRequest

MAX_LENGTH = 254  # RFC 5321's limit on a forward path, less its angle brackets
MAX_LOCAL_LENGTH = 64
INVALID_EMAIL = "Enter a valid email address."

# Unicode categories never allowed in an address: controls (NUL, CR, LF, C1), format characters (bidi
# overrides, zero-width joiners), surrogates, private use, unassigned, and every kind of separator.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
# Characters that are not allowed unquoted in a local part, or that would break an HTML or header sink.
_REFUSED_IN_LOCAL = frozenset("<>\"'`(),;:[]\\")


class InvalidEmail(BadRequest):
    """The text is not an e-mail address we accept (400)."""

    def __init__(self, detail: str = INVALID_EMAIL) -> None:
        super().__init__(detail)


def _refuse_unsafe_characters(text: str) -> None:
    for char in text:
        if char.isspace() or unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise InvalidEmail()


def normalize_email(raw: str) -> str:
    """The normal form of an address (NFKC, case-folded, IDNA domain); InvalidEmail (400) when it is not one.

    Spaces around the address (a pasted form field) are trimmed; any whitespace, control or format
    character inside it is refused.
    """
    if not isinstance(raw, str):
        raise InvalidEmail()
    text = raw.strip(" ")
    _refuse_unsafe_characters(text)
    # Case folding can leave a string that is no longer NFKC (and vice versa): normalise on both sides.
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    _refuse_unsafe_characters(text)
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or "@" in local or len(local) > MAX_LOCAL_LENGTH:
        raise InvalidEmail()
    if any(char in _REFUSED_IN_LOCAL for char in local) or local.startswith(".") or local.endswith("."):
        raise InvalidEmail()
    if ".." in local:
        raise InvalidEmail()
    try:
        # A trailing dot names the same (fully qualified) domain.
        ascii_domain = idna.encode(domain.removesuffix("."), uts46=True, std3_rules=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidEmail() from exc
    if "." not in ascii_domain:
        raise InvalidEmail()
    address = f"{local}@{ascii_domain}"
    if len(address.encode("utf-8")) > MAX_LENGTH:
        raise InvalidEmail()
    return address


def is_valid_email(raw: str) -> bool:
    """Whether `normalize_email` accepts the text."""
    try:
        normalize_email(raw)
    except InvalidEmail:
        return False
    return True
