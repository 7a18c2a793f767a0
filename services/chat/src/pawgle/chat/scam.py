"""Scam warnings: a message that asks for money or a code, or pushes off the platform, gets a visible
caution for its recipient (never for its sender, never for PawGle's own messages)."""

from __future__ import annotations

import re

# Words scammers use to get money or codes, or to move a conversation where the platform cannot protect
# anyone; and an e-mail address or a phone number typed into a message (the safe exchange is for that).
_SCAM = re.compile(
    r"\b(gift ?cards?|itunes|google play card|steam card|western union|moneygram|wire (the |me )?(money|cash)|"
    r"bitcoin|crypto|paypal|venmo|zelle|cash ?app|revolut|send (me )?(the )?(money|cash)|deposit|reward first|"
    r"pay (me|the fee|a fee|upfront|in advance|for (the )?(shipping|transport|delivery))|"
    r"(shipping|transport|delivery|handling|vet|rehoming) (fee|cost)s?|"
    r"verification code|\d[- ]?digit code|(send|give|tell) me the code|"
    r"the code (that )?(i|we|google|they) (just )?sent|"
    r"whatsapp|telegram|signal app|wechat|text me (at|on)|call me (at|on)|e-?mail me( at)?|"
    r"contact me (at|on|via)|my (phone |cell |mobile )?number is)\b",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# A run of digits with phone punctuation: a phone number has 9 to 13 digits (a price or a date fewer, and
# a pet's microchip number, which owners and finders must be able to compare, 15).
_PHONE = re.compile(r"\+?\d[\d \-()]{7,}\d")


def _has_phone_number(body: str) -> bool:
    return any(9 <= sum(c.isdigit() for c in m.group()) <= 13 for m in _PHONE.finditer(body))


SCAM_WARNING = (
    "Be careful: this message asks for money, a code or to move off PawGle. "
    "Never pay or share codes before you have seen the pet in person, and share your contact details only "
    "through PawGle's contact exchange."
)


def scam_warning(body: str) -> str | None:
    """The warning shown to a recipient when a message looks like a known scam pattern, else None."""
    if _SCAM.search(body) or _EMAIL.search(body) or _has_phone_number(body):
        return SCAM_WARNING
    return None
