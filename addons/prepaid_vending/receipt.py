"""Vend receipts.

``receipt_data`` is the ONE place that decides what a receipt says: the
utility, vendor, customer, meter, tariff, every deduction with its VAT, the kWh
of each block, the kWh the tokens carry when STS rounding makes it differ from
the kWh paid, the tokens in groups of four digits and the reprint marker.
Two renderers lay it out:

- ``receipt_text``: fixed-width lines for thermal printers driven as text, the
  wizard's screen and the reprint API (no converter needed);
- the ``prepaid.vend.receipt`` report: ``report/vend_receipt.html`` (relatorio /
  genshi) converted to PDF by weasyprint, on 58 mm or 80 mm roll paper or A4
  as the sales point's "Receipt Paper" says.

Reprints are logged and never create credit.
"""

import datetime as dt
import html
from dataclasses import dataclass, field
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool
from trytond.report import Report
from trytond.transaction import Transaction

WIDTH_58MM = 32  # characters of a 12 cpi font on 48 mm of printable width
WIDTH_80MM = 48  # characters of a 12 cpi font on 72 mm of printable width
WIDTH_A4 = 80

#: Paper of the sales point (SalesPoint.receipt_width_mm) -> text width and
#: CSS page width.  Roll papers have no fixed height: the PDF page is cut to
#: the content (see ``html_to_pdf``).
PAPERS: dict[str, tuple[int, str]] = {
    '58': (WIDTH_58MM, '58mm'),
    '80': (WIDTH_80MM, '80mm'),
    'a4': (WIDTH_A4, '210mm'),
}
DEFAULT_PAPER = '80'
REPRINT_MARK = '*** REPRINT ***'
CANCELLED_MARK = '*** CANCELLED ***'
#: Receipt line shown when the tokens carry more kWh than were paid (STS
#: amount rounding, see token_value_kwh).
TOKEN_VALUE_LABEL = 'Token value'
ZERO = Decimal(0)
#: id of the empty element the HTML template puts after the last receipt: its
#: position on the page is the height of the content.
END_ANCHOR = 'receipt-end'
#: Page margin of roll paper (the template's @page rule uses it).
ROLL_MARGIN_MM = 3
PX_PER_MM = 96 / 25.4  # CSS pixels


@dataclass(frozen=True)
class Row:
    """One label/value line; kind 'sub' is a detail of the row above (its
    VAT), 'total' and 'credited' (the token value) are emphasised in print"""

    label: str
    value: str = ''
    kind: str = 'row'


@dataclass(frozen=True)
class TokenRow:
    label: str
    grouped: str


@dataclass(frozen=True)
class ReceiptData:
    "What one receipt says, independent of the paper"

    number: str
    utility: str
    header: list[str] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)
    details: list[Row] = field(default_factory=list)
    amounts: list[Row] = field(default_factory=list)
    units: list[Row] = field(default_factory=list)
    tokens: list[TokenRow] = field(default_factory=list)
    notes: list[Row] = field(default_factory=list)
    reprint: bool = False
    cancelled: bool = False


def _money(value) -> str:
    return f'{value:.2f}'


def token_value_kwh(vend) -> Decimal | None:
    """The kWh the tokens carry when it differs from the kWh paid, else None.

    An STS token encodes its amount as a mantissa and an exponent: above
    1638.3 kWh the amount is rounded up to the next encodable value (1700.5
    paid -> 1701.4 on the token), and the customer must see what the meter
    will show.  Free basic electricity counts on both sides when it went out
    as a token of its own."""
    if not any(t.kind in {'credit', 'fbe'} for t in vend.tokens):
        return None  # remote credit: no token carries the energy
    credited = vend.credited_kwh
    if credited is None:
        return None
    paid = vend.units_kwh or ZERO
    if any(t.kind == 'fbe' for t in vend.tokens):
        paid += vend.fbe_kwh or ZERO
    return credited if credited != paid else None


def receipt_data(vend, reprint: bool = False) -> ReceiptData:
    "The content of the receipt of vend"
    sp = vend.sales_point
    company_id = Transaction().context.get('company')
    utility = ''
    if company_id:
        utility = Pool().get('company.company')(company_id).rec_name

    details = [
        Row('Receipt', vend.number or ''),
        Row('Date', f'{vend.date:%Y-%m-%d %H:%M:%S}'),
        Row('Vendor', sp.rec_name if sp else vend.channel),
    ]
    if vend.cashier:
        details.append(Row('Operator', vend.cashier.rec_name))
    if vend.customer:
        details.append(Row('Customer', vend.customer.rec_name))
        if vend.customer.customer_number:
            details.append(Row('Account', vend.customer.customer_number))
    details.append(Row('Meter', vend.meter.serial))
    details.append(Row('Tariff', vend.tariff_version.rec_name))

    amounts = [Row('Tender', _money(vend.tender))]
    # Deductions first (fees, charges, debt and emergency-credit recoveries,
    # account credit), each with the VAT it includes.
    for line in vend.lines:
        if line.kind == 'energy':
            continue
        amounts.append(Row(line.description, _money(line.gross)))
        if line.vat:
            amounts.append(Row('incl. VAT', _money(line.vat), 'sub'))
    energy = [line for line in vend.lines if line.kind == 'energy']
    for line in energy:
        label = (
            f'{line.description} {line.kwh} kWh @ {line.price}'
            if line.kwh is not None
            else line.description
        )
        amounts.append(Row(label, _money(line.gross)))
    if energy:
        amounts.append(Row('Energy VAT', _money(sum(x.vat for x in energy)), 'sub'))
    amounts.append(Row('Total VAT', _money(vend.vat_amount), 'total'))
    if vend.debt_remaining:
        amounts.append(Row('Debt remaining', _money(vend.debt_remaining)))
    if vend.credit_amount:
        amounts.append(Row('Credit to account', _money(vend.credit_amount)))

    units = [Row('kWh', f'{vend.units_kwh}', 'total')]
    credited = token_value_kwh(vend)
    if credited is not None:
        # 0.1 kWh: the resolution of the amounts (SQLite returns Numerics
        # unquantised).
        units.append(Row(TOKEN_VALUE_LABEL, f'{credited:.1f} kWh', 'credited'))
    tokens = [
        TokenRow(f'{t.description or t.kind} {t.units or ""}'.strip(), t.grouped)
        for t in vend.tokens
    ]
    notes = []
    if vend.fbe_kwh and not any(t.kind == 'fbe' for t in vend.tokens):
        notes.append(Row('Free basic electricity', f'{vend.fbe_kwh} kWh'))
    return ReceiptData(
        number=vend.number or '',
        utility=utility,
        header=(sp.receipt_header or '').splitlines() if sp else [],
        footer=(sp.receipt_footer or '').splitlines() if sp else [],
        details=details,
        amounts=amounts,
        units=units,
        tokens=tokens,
        notes=notes,
        reprint=reprint,
        cancelled=vend.state == 'cancelled',
    )


def _pair(left: str, right: str, width: int) -> str:
    "left and right on one line of width; the longer one is cut if needed"
    room = width - 1
    if len(left) + len(right) > room:
        if len(left) >= len(right):
            left = left[: max(room - len(right), 1)]
        else:
            right = right[: max(room - len(left), 1)]
    space = max(width - len(left) - len(right), 1)
    return f'{left}{" " * space}{right}'


def _row_text(row: Row, width: int) -> str:
    label = f'  {row.label}' if row.kind == 'sub' else row.label
    return _pair(label, row.value, width)


def format_text(data: ReceiptData, width: int = WIDTH_80MM) -> str:
    "data as fixed-width lines"
    out = []
    if data.reprint:
        out.append(REPRINT_MARK.center(width))
    out.append(data.utility.center(width))
    out += [line.center(width) for line in data.header]
    out.append('=' * width)
    out += [_row_text(row, width) for row in data.details]
    out.append('-' * width)
    out += [_row_text(row, width) for row in data.amounts]
    out.append('-' * width)
    out += [_row_text(row, width) for row in data.units]
    for token in data.tokens:
        out.append(token.label[:width])
        out.append(token.grouped.center(width))
    out += [_row_text(row, width) for row in data.notes]
    if data.cancelled:
        out.append(CANCELLED_MARK.center(width))
    out.append('=' * width)
    out += [line.center(width) for line in data.footer]
    return '\n'.join(out) + '\n'


def receipt_text(vend, width: int = WIDTH_80MM, reprint: bool = False) -> str:
    "The receipt of vend as fixed-width lines"
    return format_text(receipt_data(vend, reprint=reprint), width)


def receipt_html(vend, reprint: bool = False) -> str:
    "A browser-printable 80 mm HTML page of the text layout"
    body = html.escape(receipt_text(vend, reprint=reprint))
    # A browser prints a roll as one long page: CSS has no "auto" page height.
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<style>@page{size:80mm 297mm;margin:3mm}'
        'body{width:74mm;margin:0}pre{font:9pt monospace;white-space:pre}'
        '</style></head><body><pre>' + body + '</pre></body></html>'
    )


def paper_of(vends, data: dict | None = None) -> str:
    """The paper to print vends on: data['paper'] when given, else the receipt
    paper of the first vend's sales point, else 80 mm."""
    paper = (data or {}).get('paper')
    if not paper:
        sales_point = vends[0].sales_point if vends else None
        paper = sales_point.receipt_width_mm if sales_point else None
    paper = paper or DEFAULT_PAPER
    if paper not in PAPERS:
        raise ValidationError(
            gettext(
                'prepaid_vending.msg_receipt_paper_unknown',
                paper=paper,
                papers=', '.join(PAPERS),
            )
        )
    return paper


def _weasyprint():
    "weasyprint, or None when it (or the pango library it needs) is missing"
    try:
        import weasyprint
    except (ImportError, OSError):
        return None
    return weasyprint


def html_to_document(content: str | bytes):
    """The laid-out weasyprint document of a page rendered by the HTML
    template (its pages have width and height in CSS px).

    CSS gives a page no "auto" height, so the template lays roll paper out on
    a very long page and marks the end of the content with the END_ANCHOR
    element: the page is laid out again with the height of the content, so
    that the printer cuts right after the footer."""
    weasyprint = _weasyprint()
    if weasyprint is None:
        raise RuntimeError('weasyprint is not installed')
    if isinstance(content, bytes):
        content = content.decode('utf-8')
    # Nothing is fetched from the network or the file system; data: URIs
    # (an inline logo) still work.
    fetcher = weasyprint.URLFetcher(allowed_protocols={'data'})
    document = weasyprint.HTML(string=content, url_fetcher=fetcher).render()
    if len(document.pages) == 1 and END_ANCHOR in document.pages[0].anchors:
        page = document.pages[0]
        end = page.anchors[END_ANCHOR][1]  # y of its top (CSS px)
        height = end + ROLL_MARGIN_MM * PX_PER_MM
        if height < page.height:
            cut = weasyprint.CSS(
                string=f'@page {{ size: {page.width}px {height:.2f}px !important }}',
                url_fetcher=fetcher,
            )
            document = weasyprint.HTML(string=content, url_fetcher=fetcher).render(
                stylesheets=[cut]
            )
    return document


def html_to_pdf(content: str | bytes) -> bytes:
    "The PDF of a page rendered by the HTML template (see html_to_document)"
    return html_to_document(content).write_pdf()


class VendReceipt(Report):
    """Vend receipt: HTML template converted to PDF.

    data may carry 'reprint': True (prints the REPRINT marker) and 'paper'
    ('58', '80' or 'a4') to override the sales point's paper."""

    __name__ = 'prepaid.vend.receipt'

    @classmethod
    def get_context(cls, records, header, data):
        context = super().get_context(records, header, data)
        reprint = bool(data.get('reprint'))
        paper = paper_of(records, data)
        width, page_width = PAPERS[paper]
        context['receipt_text'] = receipt_text
        context['receipts'] = [receipt_data(r, reprint=reprint) for r in records]
        context['paper'] = paper
        context['roll'] = paper != 'a4'
        context['page_width'] = page_width
        context['text_width'] = width
        context['end_anchor'] = END_ANCHOR
        context['roll_margin'] = f'{ROLL_MARGIN_MM}mm'
        context['reprint_mark'] = REPRINT_MARK
        context['cancelled_mark'] = CANCELLED_MARK
        return context

    @classmethod
    def convert(cls, report, data, timeout=5 * 60, retry=5):
        if report.template_extension == 'html' and report.extension == 'pdf':
            if _weasyprint() is None:
                # A browser prints the HTML receipt as well; better than no
                # receipt at the counter.
                return 'html', data
            return 'pdf', html_to_pdf(data)
        return super().convert(report, data, timeout=timeout, retry=retry)


class Reprint(ModelSQL, ModelView):
    "Receipt reprint log"

    __name__ = 'prepaid.vend.reprint'

    vend = fields.Many2One(
        'prepaid.vend', "Vend", required=True, readonly=True, ondelete='CASCADE'
    )
    meter = fields.Many2One('prepaid.meter', "Meter", readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True)
    date = fields.Timestamp("Date", readonly=True)
    reason = fields.Char("Reason", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('vend')
        cls._order.insert(0, ('date', 'DESC'))

    @classmethod
    def log(cls, meter, count: int | None = None, reason: str = '') -> list:
        """The last vends of meter (at most configuration.reprint_count), with
        their reprint logged.  Only reads vends: a reprint never creates
        credit."""
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Configuration = pool.get('prepaid.configuration')
        allowed = Configuration(1).reprint_count or 0
        if not allowed:
            raise ValidationError(gettext('prepaid_vending.msg_reprint_disabled'))
        count = min(count or allowed, allowed)
        vends = Vend.search(
            [('meter', '=', meter.id)],
            limit=count,
            order=[('date', 'DESC'), ('id', 'DESC')],
        )
        if not vends:
            raise ValidationError(
                gettext('prepaid_vending.msg_reprint_none', meter=meter.serial)
            )
        now = dt.datetime.now()
        cls.save(
            [
                cls(
                    vend=v,
                    meter=meter,
                    user=Transaction().user,
                    date=now,
                    reason=reason,
                )
                for v in vends
            ]
        )
        return vends

    @classmethod
    def reprint(
        cls,
        meter,
        count: int | None = None,
        reason: str = '',
    ) -> list[str]:
        "The last receipts of meter as text, marked REPRINT, logged"
        return [receipt_text(v, reprint=True) for v in cls.log(meter, count, reason)]

    @classmethod
    def reprint_report(
        cls,
        meter,
        count: int | None = None,
        reason: str = '',
        paper: str | None = None,
    ) -> tuple[str, bytes, str]:
        """The last receipts of meter as one printable document (PDF, or HTML
        without weasyprint) marked REPRINT, logged: (extension, content,
        file name)."""
        VendReceiptReport = Pool().get('prepaid.vend.receipt', type='report')
        vends = cls.log(meter, count, reason)
        data = {'model': 'prepaid.vend', 'reprint': True}
        if paper:
            data['paper'] = paper
        ext, content, _, name = VendReceiptReport.execute([v.id for v in vends], data)
        return ext, content, name
