"""Phone numbers as GoHighLevel and Vapi take them: E.164 (``+14155550199``), one rule.

GoHighLevel's spec shows phone numbers only in E.164; a number written without ``+country``
is read as one of the client's ``default_country``. Nothing here imports from the package:
anything may import it.
"""

from __future__ import annotations

import phonenumbers


def to_e164(text: str, default_country: str) -> str | None:
    """``text`` as E.164, or ``None`` when it is not a possible number of that length.

    A local-only number (``555-0199``: no area code) is not one: it would become a
    ``+15550199`` nobody can reach.
    """
    try:
        number = phonenumbers.parse(text, default_country)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_possible_number_with_reason(number) \
            != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
