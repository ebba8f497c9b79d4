"""Phone numbers as the customer service stores them: E.164 ("+79161234567").

Telephony platforms send numbers in every spelling ("8 (916) 123-45-67",
"0079161234567", "+7 916 123 45 67"); a customer is found by any of them.
"""

from __future__ import annotations

import phonenumbers

# The chain's home country: numbers without a country code are read as its numbers.
DEFAULT_REGION = "RU"


class InvalidPhone(ValueError):
    pass


def to_e164(raw: str, region: str = DEFAULT_REGION) -> str:
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone(f"{raw!r} is not a phone number: {error}") from error
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
