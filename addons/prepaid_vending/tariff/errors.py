"""The single exception type of the tariff calculator."""


class TariffError(ValueError):
    """A tariff, a vend request or a billing input is invalid.

    The message is meant for staff: it names the field and the offending value.
    """
