"""Exception hierarchy of the STS token engine.

Every error is a ``ValueError`` subclass so that callers validating user input
can catch one type; the subclasses let Tryton code map errors to user messages.
"""

from __future__ import annotations


class StsError(ValueError):
    """Base class of every error raised by the STS engine."""


class AmountError(StsError):
    """The amount cannot be encoded in the token (too large, negative, ...)."""


class TidRangeError(StsError):
    """The issue time is outside the 24-bit TID range of the base date."""


class AlgorithmError(StsError):
    """Unknown or unsupported encryption (EA) or key derivation (DKGA) algorithm."""


class PanError(StsError):
    """Malformed meter PAN or wrong Luhn check digit."""


class KeyLengthError(StsError):
    """A key does not have the length the algorithm needs."""


class ParameterError(StsError):
    """A token or key parameter (SGC, TI, KRN, KT, class, subclass...) is invalid."""


class TokenFormatError(StsError):
    """A token string is not a valid 20-digit STS token."""


class TablesError(StsError):
    """The STA substitution/permutation tables file is missing or invalid."""
