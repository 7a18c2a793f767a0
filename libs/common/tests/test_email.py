"""The one normal form of an e-mail address (pawgle.common.email)."""

from __future__ import annotations

import pytest

from pawgle.common.email import InvalidEmail, is_valid_email, normalize_email


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM ", "alice@example.com"),
        ("\u212ax@example.org", "kx@example.org"),  # KELVIN SIGN is the Latin K
        ("\uff41lice@\uff45xample.com", "alice@example.com"),  # fullwidth letters
        ("bob@B\u00fccher.de", "bob@xn--bcher-kva.de"),  # the domain in its IDNA ASCII form
        ("bob@xn--bcher-kva.de", "bob@xn--bcher-kva.de"),
        ("carol@example.com.", "carol@example.com"),  # the same, fully qualified
        ("o.k+tag@example.com", "o.k+tag@example.com"),
        ("stra\u00dfe@example.de", "strasse@example.de"),  # case folding, not only lower-casing
    ],
)
def test_spellings_of_one_address_have_one_normal_form(raw: str, normal: str) -> None:
    assert normalize_email(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "alice\x00@example.com",  # NUL
        "alice@example.com\r\nBcc: eve@evil.test",  # a header injection
        "alice@example.com\n",
        "ali ce@example.com",
        "alice@exa\tmple.com",
        "alice\u202e@example.com",  # bidi override
        "alice\u200b@example.com",  # zero-width space
        "alice\x85@example.com",  # C1 control (NEL)
        "alice\ud800@example.com",  # a lone surrogate (JSON can carry one)
        "alice\u2028@example.com",  # line separator
        "",
        "alice",
        "alice@",
        "@example.com",
        "alice@localhost",
        "a@b@example.com",
        "alice@example\ufe6bcom",  # a look-alike @ that NFKC turns into a second one
        '"alice"@example.com',
        "<alice@example.com>",
        ".alice@example.com",
        "al..ice@example.com",
        "alice@exa_mple.com",
        "alice@-example.com",
        "a" * 65 + "@example.com",
        "alice@" + "a" * 250 + ".com",
    ],
)
def test_text_that_is_not_a_safe_address_is_refused_with_a_400(raw: str) -> None:
    with pytest.raises(InvalidEmail) as refused:
        normalize_email(raw)
    assert refused.value.status_code == 400
    assert refused.value.detail == "Enter a valid email address."
    assert not is_valid_email(raw)


def test_the_normal_form_is_stable() -> None:
    for raw in ("\u212ax@Example.org", "bob@B\u00fccher.de", "stra\u00dfe@example.de"):
        once = normalize_email(raw)
        assert normalize_email(once) == once
