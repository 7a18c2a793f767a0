"""Link-only e-mails (contract 6.3): a subject, a line of text and a link; never message bodies or contacts."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

_HEADER_UNSAFE = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class ComposedEmail:
    kind: str
    subject: str
    text: str
    html: str


def _clean_subject(subject: str) -> str:
    return _HEADER_UNSAFE.sub(" ", subject).strip()[:200]


def _compose(kind: str, subject: str, lead: str, link: str, action: str, footer: str = "") -> ComposedEmail:
    text = f"{lead}\n\n{action}: {link}\n"
    if footer:
        text += f"\n{footer}\n"
    body = f'<p>{html.escape(lead)}</p><p><a href="{html.escape(link, quote=True)}">{html.escape(action)}</a></p>' + (
        f"<p>{html.escape(footer)}</p>" if footer else ""
    )
    return ComposedEmail(kind=kind, subject=_clean_subject(subject), text=text, html=body)


def magic_link_email(*, purpose: str, link: str) -> ComposedEmail:
    """Sign-in, e-mail verification or password reset: the link the auth service minted."""
    footer = "The link works once and expires soon. If you did not ask for it, ignore this e-mail."
    if purpose == "verify_email":
        return _compose("verify_email", "Confirm your PawGle e-mail", "Welcome to PawGle.", link, "Confirm", footer)
    if purpose == "password_reset":
        return _compose(
            "password_reset",
            "Reset your PawGle password",
            "Someone asked to reset your PawGle password.",
            link,
            "Choose a new password",
            footer,
        )
    return _compose("sign_in", "Your PawGle sign-in link", "Here is your PawGle sign-in link.", link, "Sign in", footer)


def nearby_alert_email(*, frontend: str, status: str) -> ComposedEmail:
    """A report near one of the user's areas: a link to the map."""
    return _compose(
        "nearby_alert",
        f"PawGle: {status} pet near your area",
        f"A {status} pet was reported near one of your saved areas.",
        f"{frontend}/pet/map",
        "Open the map",
    )


def report_expiring_email(*, frontend: str, name: str) -> ComposedEmail:
    """A report about to leave the maps: a link to the map, where its reporter renews it."""
    return _compose(
        "report_expiring",
        f"PawGle: your report for {name} is about to expire",
        f"Your report for {name} leaves the map in a few days unless you renew it.",
        f"{frontend}/pet/map",
        "Renew it on the map",
    )


def match_email(*, frontend: str, name: str, conversation_id: str) -> ComposedEmail:
    """A possible match: a link to the chat opened for it."""
    return _compose(
        "auto_match",
        f"PawGle: possible match for {name}",
        f"We found a possible match for {name}.",
        f"{frontend}/chat/{conversation_id}",
        "Open the chat",
    )


def chat_page_email(*, frontend: str, conversation_id: str) -> ComposedEmail:
    """A new chat message: a link to the conversation, never the message."""
    return _compose(
        "chat_message",
        "PawGle: you have a new message",
        "Someone wrote to you on PawGle.",
        f"{frontend}/chat/{conversation_id}",
        "Read it in the chat",
    )
