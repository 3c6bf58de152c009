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

Printing: the first print of a vend's receipt, asked by the Sell Electricity
wizard of the cashier who sold it, is the original; every other print of the
``prepaid.vend.receipt`` report (Print > Receipt on a vend, the wizard's
second print, ``Reprint.reprint_report``) is a reprint: marked REPRINT, only
for the meter's last receipts (*Receipts Available for Reprint*), only for
the groups that may read token digits, and logged in the print log.  The
decision is the server's (``VendReceipt._execute``), never the client's.
Reprints never create credit.
"""

import datetime as dt
import html
import textwrap
from dataclasses import dataclass, field
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.model.exceptions import AccessError, ValidationError

# Absolute: the tests import this file a second time as a plain package, and
# credit.py (through vend.py) must not be imported twice.
from trytond.modules.prepaid_vending.credit import wall_clock
from trytond.modules.prepaid_vending.delivery import vend_delivery
from trytond.pool import Pool
from trytond.report import Report
from trytond.rpc import RPC
from trytond.transaction import Transaction, without_check_access

from .append_only import AppendOnlyMixin

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
#: Title of a receipt that carries VAT.
TAX_INVOICE = 'TAX INVOICE'
#: Groups that may print a receipt again (the groups that read token digits).
REPRINT_GROUPS = ('group_cashier', 'group_manager', 'group_admin')
PRINT_KINDS = [
    ('original', "Original"),
    ('reprint', "Reprint"),
]
#: Context key (RPC strips keys starting with "_", so no client sets it):
#: the caller has checked and logged the reprint itself.
REPRINT_LOGGED = '_prepaid_reprint_logged'
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
    VAT), 'total' and 'credited' (the token value) are emphasised in print,
    'note' is a sentence of its own (no value)."""

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
    title: str = ''
    header: list[str] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)
    details: list[Row] = field(default_factory=list)
    amounts: list[Row] = field(default_factory=list)
    units: list[Row] = field(default_factory=list)
    tokens: list[TokenRow] = field(default_factory=list)
    delivery: list[Row] = field(default_factory=list)
    delivery_tokens: list[TokenRow] = field(default_factory=list)
    notes: list[Row] = field(default_factory=list)
    reprint: bool = False
    cancelled: bool = False


def _money(value) -> str:
    return f'{value:.2f}'


def _price(value: Decimal) -> str:
    "A unit price with the decimals it has, at least two (1.84, 1.8375)"
    text = f'{value:.4f}'.rstrip('0')
    whole, _, decimals = text.partition('.')
    return f'{whole}.{decimals.ljust(2, "0")}'


def gross_price(price: Decimal, calculator) -> Decimal:
    """A block price on the VAT basis of the amounts shown (VAT included):
    the tariff's price as it is when its prices include VAT, else with VAT
    added, to 0.0001."""
    if calculator.prices_include_vat:
        return price
    return (price * (1 + calculator.vat_rate)).quantize(Decimal('0.0001'))


def energy_label(description: str, kwh, price) -> str:
    "Block 2: 54.3 kWh @ 1.84 (price incl. VAT, as the amount beside it)"
    return f'{description}: {kwh} kWh @ {_price(price)}'


def token_label(token) -> str:
    "What a token is for, said once: 'Credit token: 54.3 kWh'"
    if token.kind in {'credit', 'fbe'} and token.units is not None:
        name = 'Credit token' if token.kind == 'credit' else 'Free electricity token'
        return f'{name}: {token.units:.1f} kWh'
    return token.description or dict(TOKEN_LABELS).get(token.kind, token.kind)


TOKEN_LABELS = [
    ('key_change', "Key change token"),
    ('credit', "Credit token"),
    ('fbe', "Free electricity token"),
    ('engineering', "Engineering token"),
]


def _vat_number(company) -> str:
    "The utility's VAT number (its party's tax identifier), or ''"
    party = company.party if company else None
    identifier = party.tax_identifier if party else None
    return identifier.code if identifier else ''


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
    # The utility that sold it (its name and VAT number are on the receipt).
    company = vend.company
    utility = company.rec_name if company else ''
    # A receipt that carries VAT is the customer's tax invoice.
    taxed = bool(vend.vat_amount)
    vat_number = _vat_number(company) if taxed else ''

    details = [
        Row('Receipt', vend.number or ''),
        Row('Date', f'{wall_clock(vend.date):%Y-%m-%d %H:%M:%S}'),
        Row('Vendor', sp.rec_name if sp else vend.channel),
    ]
    if vat_number:
        details.insert(0, Row('VAT No.', vat_number))
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
    calculator = vend.tariff_version.pricing().calculator if energy else None
    for line in energy:
        # Price and amount on one VAT basis: both include VAT.
        label = (
            energy_label(
                line.description, line.kwh, gross_price(line.price, calculator)
            )
            if line.kwh is not None and line.price is not None
            else line.description
        )
        amounts.append(Row(label, _money(line.gross)))
    if energy:
        amounts.append(Row('incl. VAT', _money(sum(x.vat for x in energy)), 'sub'))
    amounts.append(Row('Total VAT', _money(vend.vat_amount), 'total'))
    if vend.debt_remaining:
        amounts.append(Row('Debt remaining', _money(vend.debt_remaining)))
    if vend.credit_amount:
        amounts.append(Row('Credit to account', _money(vend.credit_amount)))
    if energy:
        amounts.append(Row('Prices and amounts include VAT.', kind='note'))

    units = [Row('Energy purchased', f'{vend.units_kwh:.1f} kWh', 'total')]
    credited = token_value_kwh(vend)
    if credited is not None:
        # 0.1 kWh: the resolution of the amounts (SQLite returns Numerics
        # unquantised).
        units.append(Row(TOKEN_VALUE_LABEL, f'{credited:.1f} kWh', 'credited'))
    tokens = [TokenRow(token_label(t), t.grouped) for t in vend.tokens]
    delivery_rows, delivery_tokens = [], []
    delivery = vend_delivery(vend)
    if delivery is not None:
        delivery_rows.append(Row('Delivery', delivery.status))
        if delivery.way_forward:
            delivery_rows.append(Row(delivery.way_forward, kind='note'))
        delivery_tokens = [
            TokenRow('Token for manual entry', group_digits(t)) for t in delivery.tokens
        ]
    notes = []
    if vend.fbe_kwh and not any(t.kind == 'fbe' for t in vend.tokens):
        notes.append(Row('Free basic electricity', f'{vend.fbe_kwh} kWh'))
    return ReceiptData(
        number=vend.number or '',
        utility=utility,
        title=TAX_INVOICE if taxed else '',
        header=(sp.receipt_header or '').splitlines() if sp else [],
        footer=(sp.receipt_footer or '').splitlines() if sp else [],
        details=details,
        amounts=amounts,
        units=units,
        tokens=tokens,
        delivery=delivery_rows,
        delivery_tokens=delivery_tokens,
        notes=notes,
        reprint=reprint,
        cancelled=vend.state == 'cancelled',
    )


def group_digits(digits: str) -> str:
    "20 digits in groups of four, as printed and keyed in"
    return ' '.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _wrap(text: str, width: int) -> list[str]:
    "text in lines of at most width, broken between words where possible"
    return textwrap.wrap(text, max(width, 1), break_on_hyphens=False) or ['']


def _row_lines(row: Row, width: int) -> list[str]:
    """A row as fixed-width lines: label and value on one line when they fit;
    otherwise the label is wrapped between words with the value on its last
    line (amounts), or the value goes under the label, wrapped between words
    (names, tariffs): nothing is ever cut."""
    indent = '  ' if row.kind == 'sub' else ''
    label, value = indent + row.label, row.value
    if row.kind == 'note' or not value:
        return [indent + line for line in _wrap(row.label, width - len(indent))]
    if len(label) + 1 + len(value) <= width:
        return [f'{label}{" " * (width - len(label) - len(value))}{value}']
    if len(value) <= width // 3:
        lines = [indent + x for x in _wrap(row.label, width - len(value) - 1)]
        last = lines[-1]
        lines[-1] = f'{last}{" " * (width - len(last) - len(value))}{value}'
        return lines
    lines = [indent + x for x in _wrap(row.label, width - len(indent))]
    return lines + [f'  {x}' for x in _wrap(value, width - 2)]


def format_text(data: ReceiptData, width: int = WIDTH_80MM) -> str:
    "data as fixed-width lines"
    out = []
    if data.reprint:
        out.append(REPRINT_MARK.center(width))
    out += [line.center(width) for line in _wrap(data.utility, width)]
    if data.title:
        out.append(data.title.center(width))
    out += [line.center(width) for line in data.header]
    out.append('=' * width)
    for section in (data.details, data.amounts, data.units):
        out += [line for row in section for line in _row_lines(row, width)]
        if section is not data.units:
            out.append('-' * width)
    for token in data.tokens:
        out += _wrap(token.label, width)
        out.append(token.grouped.center(width))
    if data.delivery:
        out.append('-' * width)
        out += [line for row in data.delivery for line in _row_lines(row, width)]
        for token in data.delivery_tokens:
            out += _wrap(token.label, width)
            out.append(token.grouped.center(width))
    out += [line for row in data.notes for line in _row_lines(row, width)]
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

    data may carry 'original': True (the Sell Electricity wizard asks for
    the original receipt: granted once, to the cashier who sold, see the
    module docstring) and 'paper' ('58', '80' or 'a4') to override the sales
    point's paper.  Whether it is a reprint is decided here, never taken
    from data."""

    __name__ = 'prepaid.vend.receipt'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # Printing writes the print log.
        cls.__rpc__['execute'] = RPC(readonly=False)

    @classmethod
    def _execute(cls, records, header, data, action):
        # After trytond's access check of the records (record rules).
        Reprint = Pool().get('prepaid.vend.reprint')
        data = dict(data)
        if Transaction().context.get(REPRINT_LOGGED):
            data['reprint'] = True
        else:
            data['reprint'] = not Reprint.log_print(
                records, original=bool(data.get('original'))
            )
        return super()._execute(records, header, data, action)

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


class Reprint(AppendOnlyMixin, ModelSQL, ModelView):
    "Receipt print log: the original print and every reprint"

    __name__ = 'prepaid.vend.reprint'

    vend = fields.Many2One(
        'prepaid.vend', "Vend", required=True, readonly=True, ondelete='CASCADE'
    )
    meter = fields.Many2One('prepaid.meter', "Meter", readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True)
    date = fields.Timestamp("Date", readonly=True)
    reason = fields.Char("Reason", readonly=True)
    kind = fields.Selection(PRINT_KINDS, "Print", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('vend')
        cls._order.insert(0, ('date', 'DESC'))

    @staticmethod
    def default_kind():
        return 'reprint'

    @classmethod
    def _allowed(cls) -> int:
        Configuration = Pool().get('prepaid.configuration')
        allowed = Configuration(1).reprint_count or 0
        if not allowed:
            raise ValidationError(gettext('prepaid_vending.msg_reprint_disabled'))
        return allowed

    @classmethod
    def _check_reprint_user(cls) -> None:
        "Only the groups that may read token digits print a receipt again"
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        if not Transaction().user:
            return
        allowed = {ModelData.get_id('prepaid_vending', g) for g in REPRINT_GROUPS}
        if not set(User.get_groups()) & allowed:
            raise AccessError(gettext('prepaid_vending.msg_reprint_group'))

    @classmethod
    def _write_log(cls, vends, kind: str, reason: str = '') -> None:
        now = dt.datetime.now()
        # The log is the system's record of a print: written whatever the
        # printing user may write.
        with without_check_access():
            cls.save(
                [
                    cls(
                        vend=v,
                        meter=v.meter,
                        user=Transaction().user,
                        date=now,
                        reason=reason,
                        kind=kind,
                    )
                    for v in vends
                ]
            )

    @classmethod
    def log_print(cls, vends, original: bool = False, reason: str = '') -> bool:
        """Log a print of the receipts of vends; True when it is the original.

        The original is granted once per vend, to the cashier who sold it,
        when asked for (the wizard); anything else is a reprint, refused for
        a vend that is no longer among its meter's last receipts."""
        Vend = Pool().get('prepaid.vend')
        vends = Vend.browse([v.id for v in vends])
        user = Transaction().user
        if original and len(vends) == 1 and user:
            (vend,) = vends
            with without_check_access():
                printed = cls.search_count([('vend', '=', vend.id)])
            if (
                not printed
                and vend.state == 'issued'
                and vend.cashier
                and vend.cashier.id == user
            ):
                cls._write_log([vend], 'original')
                return True
        cls.check_reprint(vends)
        cls._write_log(vends, 'reprint', reason)
        return False

    @classmethod
    def check_reprint(cls, vends) -> None:
        "Refuse a reprint the user may not make or of a receipt too old"
        Vend = Pool().get('prepaid.vend')
        cls._check_reprint_user()
        allowed = cls._allowed()
        with without_check_access():
            for vend in vends:
                last = Vend.search(
                    [('meter', '=', vend.meter.id)],
                    limit=allowed,
                    order=[('date', 'DESC'), ('id', 'DESC')],
                )
                if vend not in last:
                    raise ValidationError(
                        gettext(
                            'prepaid_vending.msg_reprint_too_old',
                            vend=vend.number,
                            meter=vend.meter.serial,
                            count=allowed,
                        )
                    )

    @classmethod
    def log(cls, meter, count: int | None = None, reason: str = '') -> list:
        """The last vends of meter (at most configuration.reprint_count), with
        their reprint logged.  Only reads vends: a reprint never creates
        credit."""
        Vend = Pool().get('prepaid.vend')
        cls._check_reprint_user()
        allowed = cls._allowed()
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
        cls._write_log(vends, 'reprint', reason)
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
        data = {'model': 'prepaid.vend'}
        if paper:
            data['paper'] = paper
        with Transaction().set_context({REPRINT_LOGGED: True}):
            ext, content, _, name = VendReceiptReport.execute(
                [v.id for v in vends], data
            )
        return ext, content, name
