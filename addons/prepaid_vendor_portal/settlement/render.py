"""A vendor statement as XLSX (openpyxl) and as PDF (HTML laid out by
weasyprint, as the vend receipts are).

Both say the same, from :func:`summary_rows` and :meth:`Statement.running`:
the title, the period and its time zone, when it was generated, the
summary (opening balance, top-ups, sales, reversals, commission, fees,
adjustments, closing balance, credit line, available), then every line with
its reference and the balance after it; "No activity" for an empty period.
The XLSX holds values, not formulas (every reader sees the same figures,
whether it computes or not), and text is always text: a description that
starts with ``=`` stays a description.  The PDF is A4 with "Page X of Y".
"""

from __future__ import annotations

import html
import io
import re
from decimal import Decimal

from ..money import format_amount, quantum
from .statement import LABELS, LineKind, Statement

NO_ACTIVITY = "No activity in this period."
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def summary_rows(statement: Statement) -> list[tuple[str, Decimal]]:
    rows = [("Opening balance", statement.opening_balance)]
    rows += [
        (LABELS[kind] + ("s" if kind != LineKind.COMMISSION else ""),
         statement.total(kind))
        for kind in LineKind
    ]  # fmt: skip
    rows += [
        ("Closing balance", statement.closing_balance),
        ("Credit line", statement.credit_line),
        ("Available", statement.available),
    ]
    return rows


def title(statement: Statement) -> str:
    return f"Vendor statement: {statement.vendor_name} ({statement.vendor_code})"


def period_text(statement: Statement) -> str:
    return (
        f"{statement.first_day.isoformat()} to {statement.last_day.isoformat()} "
        f"({statement.timezone.key} time), amounts in {statement.currency}"
    )


def generated_text(statement: Statement) -> str:
    local = statement.generated_at.astimezone(statement.timezone)
    return f"Generated {local.isoformat(timespec='seconds')}"


# --------------------------------------------------------------------- XLSX
def statement_xlsx(statement: Statement) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    q = quantum(statement.digits)
    money_format = "#,##0" + ("." + "0" * statement.digits if statement.digits else "")
    book = Workbook()
    sheet = book.active
    sheet.title = "Statement"
    bold = Font(bold=True)

    def put(row: int, column: int, value, *, font=None, money=False):
        cell = sheet.cell(row=row, column=column)
        if isinstance(value, str):
            cell.value = _CONTROL.sub("", value)
            cell.data_type = "s"  # never a formula
        else:
            cell.value = value
        if money:
            cell.number_format = money_format
        if font:
            cell.font = font
        return cell

    put(1, 1, title(statement), font=Font(bold=True, size=14))
    put(2, 1, period_text(statement))
    put(3, 1, generated_text(statement))
    row = 5
    for label, amount in summary_rows(statement):
        put(row, 1, label, font=bold)
        put(row, 5, Decimal(format_amount(amount, q)), money=True)
        row += 1
    row += 1
    for column, name in enumerate(
        ("Date", "Type", "Reference", "Description", "Amount", "Balance"), 1
    ):
        put(row, column, name, font=bold)
    header_row = row
    row += 1
    if not statement.lines:
        put(row, 1, NO_ACTIVITY)
    for line, balance in statement.running():
        local = line.at.astimezone(statement.timezone).replace(tzinfo=None)
        put(row, 1, local).number_format = "yyyy-mm-dd hh:mm:ss"
        put(row, 2, LABELS[line.kind])
        put(row, 3, line.reference)
        put(row, 4, line.description)
        put(row, 5, line.amount, money=True)
        put(row, 6, balance, money=True)
        row += 1
    for column, width in zip("ABCDEF", (20, 12, 22, 44, 14, 14)):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- HTML, PDF
STYLE = """
@page { size: A4; margin: 18mm 14mm 20mm;
  @bottom-right { content: "Page " counter(page) " of " counter(pages);
                  font: 8pt sans-serif; }
  @bottom-left { content: string(title); font: 8pt sans-serif; } }
body { font: 9pt sans-serif; }
h1 { font-size: 14pt; margin: 0 0 2mm; string-set: title content(); }
p.meta { margin: 0; color: #333; }
table { border-collapse: collapse; width: 100%; margin-top: 5mm; }
th, td { padding: 1mm 1.5mm; border-bottom: 0.2mm solid #bbb; text-align: left;
         vertical-align: top; }
td.n, th.n { text-align: right; white-space: nowrap; }
td.d { white-space: nowrap; }
thead { display: table-header-group; }
table.summary { width: 60%; }
tr.total td { font-weight: bold; }
"""


def statement_html(statement: Statement) -> str:
    q = quantum(statement.digits)

    def e(text: str) -> str:
        return html.escape(_CONTROL.sub("", text))

    def n(amount: Decimal) -> str:
        return f"{format_amount(amount, q)}"

    summary = "".join(
        f'<tr{" class=total" if label.endswith("balance") else ""}>'
        f'<td>{e(label)}</td><td class="n">{n(amount)}</td></tr>'
        for label, amount in summary_rows(statement)
    )
    body = (
        "".join(
            f'<tr><td class="d">'
            f"{line.at.astimezone(statement.timezone):%Y-%m-%d %H:%M:%S}</td>"
            f"<td>{LABELS[line.kind]}</td><td>{e(line.reference)}</td>"
            f'<td>{e(line.description)}</td><td class="n">{n(line.amount)}</td>'
            f'<td class="n">{n(balance)}</td></tr>'
            for line, balance in statement.running()
        )
        or f'<tr><td colspan="6">{NO_ACTIVITY}</td></tr>'
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{e(title(statement))}</title><style>{STYLE}</style></head><body>"
        f"<h1>{e(title(statement))}</h1>"
        f'<p class="meta">{e(period_text(statement))}</p>'
        f'<p class="meta">{e(generated_text(statement))}</p>'
        f'<table class="summary"><tbody>{summary}</tbody></table>'
        "<table><thead><tr><th>Date</th><th>Type</th><th>Reference</th>"
        '<th>Description</th><th class="n">Amount</th><th class="n">Balance</th>'
        f"</tr></thead><tbody>{body}</tbody></table></body></html>"
    )


def statement_pdf(statement: Statement) -> bytes:
    """The statement as an A4 PDF.  Nothing is fetched while laying it out
    (no file, no network): the page is self-contained."""
    try:
        import weasyprint
    except (ImportError, OSError) as error:  # OSError: pango is missing
        raise RuntimeError(f"weasyprint cannot be loaded: {error}") from None
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})
    document = weasyprint.HTML(string=statement_html(statement), url_fetcher=fetcher)
    return document.write_pdf()
