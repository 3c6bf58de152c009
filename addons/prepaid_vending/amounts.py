"""Amounts typed by staff or sent by clients, read by one function.

``parse_amount`` is the Tryton side of ``inputs.numbers.parse_decimal`` (the
rule itself, shared with the commands): it turns its refusals into a user
error with a translated message.  The vend wizard, ``Vend.vend``,
``Vend.rpc_vend`` and ``Vend.trial`` go through it; so does the ``Amount``
field, a Numeric field for wizard and form inputs that reads text sent by a
client the same way instead of handing it to ``Decimal()`` (which takes
``1_000`` and ``١٠٠٠`` and raises a bare ``ConversionSyntax`` on ``abc``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import fields

from .inputs.numbers import MAX_INTEGER_DIGITS, MAX_TEXT, NumberError, parse_decimal


class AmountError(UserError):
    "An amount that is not a number, or not one the platform accepts"


def parse_amount(
    value: Any,
    what: str,
    places: int | None = None,
    error: type[UserError] = AmountError,
) -> Decimal | None:
    """value (text, int or Decimal) as a Decimal; None stays None.

    places: the decimal places allowed (2 for a tender), else the general
    bound.  Raises error (a UserError) naming what and the value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return parse_decimal(value, places=places)
    except NumberError as exc:
        raise error(
            gettext(
                f'prepaid_vending.msg_amount_{exc.code}',
                what=what,
                value=exc.params.get('value', ''),
                places=exc.params.get('places', places),
                digits=MAX_INTEGER_DIGITS,
                maximum=MAX_TEXT,
            )
        ) from None


class Amount(fields.Numeric):
    """A Numeric field whose text values are read by parse_amount.

    sao sends numbers as Decimal; a JSON-RPC client may send text, which a
    plain Numeric field passes to Decimal().  Use it for amounts staff type."""

    def __set__(self, inst: Any, value: Any) -> None:
        if isinstance(value, str):
            value = parse_amount(value, self.string)
        super().__set__(inst, value)
