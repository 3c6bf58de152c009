"""Vendor settlement, pure Python (no trytond import): the daily settlement
file (:mod:`.daily`) and the vendor statement for a period
(:mod:`.statement`), rendered as XLSX and PDF (:mod:`.render`).
See docs/vendors.md.
"""

from .daily import (
    COLUMNS,
    TRAILER,
    SettlementFileError,
    SettlementTx,
    Trailer,
    TxKind,
    daily_file,
    file_name,
    mask_token,
    read_daily_file,
)
from .render import NO_ACTIVITY, statement_html, statement_pdf, statement_xlsx
from .statement import LineKind, Statement, StatementLine, build_statement

__all__ = [
    "COLUMNS",
    "NO_ACTIVITY",
    "TRAILER",
    "LineKind",
    "SettlementFileError",
    "SettlementTx",
    "Statement",
    "StatementLine",
    "Trailer",
    "TxKind",
    "build_statement",
    "daily_file",
    "file_name",
    "mask_token",
    "read_daily_file",
    "statement_html",
    "statement_pdf",
    "statement_xlsx",
]
