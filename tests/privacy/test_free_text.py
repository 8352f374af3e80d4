"""Free text (feedback and case notes) loses its card numbers, IPs and e-mail addresses."""

from __future__ import annotations

from vigil.privacy.pseudonyms import Pseudonymiser

P = Pseudonymiser(b"k")
NOTE = (
    "customer says card 4111 1111 1111 1111 (also 5500-0000-0000-0004, 4012888888881881) was "
    "used from 102.89.4.17 and 2001:db8::7; write to Ada.Obi+fraud@example.com.ng"
)
CLEAR = ("4111", "5500", "4012888888881881", "102.89.4.17", "2001:db8::7", "example.com", "Ada")


def test_card_numbers_ips_and_emails_become_pseudonyms() -> None:
    scrubbed = P.text(NOTE)
    assert not any(value in scrubbed for value in CLEAR), scrubbed
    # The same pseudonyms as the stored fields: an analyst can still match the note to the card.
    assert P.card("4111111111111111") in scrubbed and P.ip("102.89.4.17") in scrubbed
    assert P.card("5500000000000004") in scrubbed and P.ip("2001:db8::7") in scrubbed
    assert P.email("ada.obi+fraud@example.com.ng") in scrubbed
    assert P.text(scrubbed) == scrubbed  # twice changes nothing
    at_the_end = P.text("Card 4111111111111111. From 102.89.4.17.")
    assert at_the_end == f"Card {P.card('4111111111111111')}. From {P.ip('102.89.4.17')}."


def test_other_numbers_and_text_are_kept() -> None:
    kept = (
        "amount 25,000.00 NGN at 10:15, ref 4111111111111112 (no Luhn), phone +234 803 555 0101,"
        " version 1.2.3, case #1234567890123, ratio 3.5x, 999.1.1.1"
    )
    assert P.text(kept) == kept
    # A card number inside a longer run of groups is still found.
    assert "4111" not in P.text("refs 12 4111 1111 1111 1111 7")
