"""Vend receipts: an 80 mm plain-text layout (no converter needed, for thermal
printers and tests), an HTML wrapper of it, and the ODT report rendered by
relatorio.  Reprints are logged and never create credit."""

import datetime as dt
import html

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool
from trytond.report import Report
from trytond.transaction import Transaction

WIDTH_80MM = 48  # characters of a 12 cpi font on 72 mm of printable width


def _pair(left: str, right: str, width: int) -> str:
    space = max(width - len(left) - len(right), 1)
    return f'{left}{" " * space}{right}'


def receipt_text(vend, width: int = WIDTH_80MM, reprint: bool = False) -> str:
    "The receipt of vend as fixed-width lines"
    sp = vend.sales_point
    company_id = Transaction().context.get('company')
    utility = ''
    if company_id:
        utility = Pool().get('company.company')(company_id).rec_name
    out = []
    if reprint:
        out.append('*** REPRINT ***'.center(width))
    out.append(utility.center(width))
    if sp and sp.receipt_header:
        out += [line.center(width) for line in sp.receipt_header.splitlines()]
    out.append('=' * width)
    out.append(_pair('Receipt', vend.number or '', width))
    out.append(_pair('Date', f'{vend.date:%Y-%m-%d %H:%M:%S}', width))
    out.append(_pair('Vendor', sp.rec_name if sp else vend.channel, width))
    if vend.cashier:
        out.append(_pair('Operator', vend.cashier.rec_name, width))
    if vend.customer:
        out.append(_pair('Customer', vend.customer.rec_name[: width - 10], width))
        if vend.customer.customer_number:
            out.append(_pair('Account', vend.customer.customer_number, width))
    out.append(_pair('Meter', vend.meter.serial, width))
    out.append(_pair('Tariff', vend.tariff_version.rec_name[: width - 8], width))
    out.append('-' * width)
    out.append(_pair('Tender', f'{vend.tender:.2f}', width))
    for line in vend.lines:
        if line.kind == 'energy':
            continue
        out.append(_pair(line.description[: width - 12], f'{line.gross:.2f}', width))
        if line.vat:
            out.append(_pair('  incl. VAT', f'{line.vat:.2f}', width))
    energy = [line for line in vend.lines if line.kind == 'energy']
    if energy:
        for line in energy:
            detail = (
                f'{line.description} {line.kwh} kWh @ {line.price}'
                if line.kwh is not None
                else line.description
            )
            out.append(_pair(detail[: width - 12], f'{line.gross:.2f}', width))
        vat = sum(line.vat for line in energy)
        out.append(_pair('  Energy VAT', f'{vat:.2f}', width))
    out.append(_pair('Total VAT', f'{vend.vat_amount:.2f}', width))
    if vend.debt_remaining:
        out.append(_pair('Debt remaining', f'{vend.debt_remaining:.2f}', width))
    if vend.credit_amount:
        out.append(_pair('Credit to account', f'{vend.credit_amount:.2f}', width))
    out.append('-' * width)
    out.append(_pair('kWh', f'{vend.units_kwh}', width))
    for token in vend.tokens:
        out.append(f'{token.description or token.kind} {token.units or ""}'.strip())
        out.append(token.grouped.center(width))
    if vend.fbe_kwh and not any(t.kind == 'fbe' for t in vend.tokens):
        out.append(_pair('Free basic electricity', f'{vend.fbe_kwh} kWh', width))
    if vend.state == 'cancelled':
        out.append('*** CANCELLED ***'.center(width))
    out.append('=' * width)
    if sp and sp.receipt_footer:
        out += [line.center(width) for line in sp.receipt_footer.splitlines()]
    return '\n'.join(out) + '\n'


def receipt_html(vend, reprint: bool = False) -> str:
    "A printer-friendly 80 mm HTML page of the text layout"
    body = html.escape(receipt_text(vend, reprint=reprint))
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<style>@page{size:80mm auto;margin:3mm}'
        'body{width:74mm;margin:0}pre{font:9pt monospace;white-space:pre}'
        '</style></head><body><pre>' + body + '</pre></body></html>'
    )


class VendReceipt(Report):
    "Vend receipt (ODT template)"

    __name__ = 'prepaid.vend.receipt'

    @classmethod
    def get_context(cls, records, header, data):
        context = super().get_context(records, header, data)
        context['receipt_text'] = receipt_text
        return context


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
    def reprint(
        cls,
        meter,
        count: int | None = None,
        reason: str = '',
    ) -> list[str]:
        """The last receipts of meter (at most configuration.reprint_count),
        logged.  Only reads vends: a reprint never creates credit."""
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
        return [receipt_text(v, reprint=True) for v in vends]
