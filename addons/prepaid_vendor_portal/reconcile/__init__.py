"""Monthly reconciliation with a vendor, pure Python (no trytond import):
read the vendor's own transaction file (:mod:`.vendorfile`, CSV or XLSX,
hardened), then match it line by line against the utility's transactions
and classify every difference (:mod:`.match`).  See docs/vendors.md.

The Tryton layer calls ``read_vendor_file(data, vendor_tz)``, reports its
``errors``, then ``reconcile(file.rows, utility_txs, first_day, last_day,
utility_tz=..., vendor_tz=..., as_of=today)`` with the vendor's transactions
of the period plus ``MARGIN`` on each side.
"""

from .match import (
    AGE_BUCKETS,
    MARGIN,
    Class,
    Item,
    Reconciliation,
    Total,
    UtilityTx,
    reconcile,
)
from .values import parse_amount, parse_msg_id, parse_time, parse_token
from .vendorfile import (
    COLUMNS,
    FileError,
    Kind,
    RowError,
    VendorFile,
    VendorRow,
    read_vendor_file,
)

__all__ = [
    "AGE_BUCKETS",
    "COLUMNS",
    "MARGIN",
    "Class",
    "FileError",
    "Item",
    "Kind",
    "Reconciliation",
    "RowError",
    "Total",
    "UtilityTx",
    "VendorFile",
    "VendorRow",
    "parse_amount",
    "parse_msg_id",
    "parse_time",
    "parse_token",
    "read_vendor_file",
    "reconcile",
]
