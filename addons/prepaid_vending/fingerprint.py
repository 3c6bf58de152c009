"""A TLS client certificate's SHA-256 fingerprint on the records that log in
with one (concentrators, vendors' terminals): written as openssl and nginx
print it (upper or lower case, with or without colons), kept in one
spelling so that a comparison with the certificate presented is exact."""

from __future__ import annotations

import re

from trytond.i18n import gettext
from trytond.model.exceptions import ValidationError

_FINGERPRINT = re.compile(r'[0-9a-f]{64}')


def normalise_fingerprint(value: str | None) -> str | None:
    "value in lower hexadecimal without colons; None when empty"
    if not value:
        return None
    return value.replace(':', '').strip().lower()


class FingerprintMixin:
    """``_fingerprint_field`` holds a fingerprint (optional), kept normalised
    and refused unless it is a SHA-256 one with ``_fingerprint_error`` (a
    message id, given the record's name as ``record``)."""

    __slots__ = ()
    _fingerprint_field: str = ''
    _fingerprint_error: str = ''

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        name = cls._fingerprint_field
        if name in values:
            values[name] = normalise_fingerprint(values[name])
        return values

    @classmethod
    def validate_fields(cls, records, field_names):
        super().validate_fields(records, field_names)
        name = cls._fingerprint_field
        if field_names and name not in field_names:
            return
        for record in records:
            value = getattr(record, name)
            if value and not _FINGERPRINT.fullmatch(value):
                raise ValidationError(
                    gettext(cls._fingerprint_error, record=record.rec_name)
                )
