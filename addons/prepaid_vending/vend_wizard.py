"""The cashier's Sell Electricity wizard: find the customer, quote, issue.

The wizard holds no vending logic: it calls ``Vend.trial`` (nothing written)
and ``Vend.vend``.  Its idempotency key is generated once, when the wizard
starts, and kept in the wizard session: a double click on Issue or a client
that retries the request after a time-out reaches ``Vend.vend`` with the same
key and gets the vend already issued back, so the customer is charged once.
"""

import uuid
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Bool, Eval
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import (
    Button,
    StateReport,
    StateTransition,
    StateView,
    Wizard,
)

from .amounts import Amount
from .receipt import WIDTH_80MM, receipt_text
from .vend import PAYMENT_METHODS

# Emergency credit is advanced by its own flow, never sold at the counter.
COUNTER_METHODS = [m for m in PAYMENT_METHODS if m[0] != 'emergency']
MAX_MATCHES = 20
ZERO = Decimal(0)


def _pair(left: str, right: str, width: int = WIDTH_80MM) -> str:
    return f'{left}{" " * max(width - len(left) - len(right), 1)}{right}'


def quote_text(quote, width: int = WIDTH_80MM) -> str:
    """A trial quote as the cashier reads it: every deduction with its VAT,
    the energy per block and the kWh the customer gets."""
    out = [_pair('Tender', f'{quote.tender:.2f}', width)]
    deductions = [quote.channel_fee, *quote.charges]
    for line in deductions:
        if line.amount or line.vat:
            out.append(_pair(line.name[: width - 12], f'{line.gross:.2f}', width))
            if line.vat:
                out.append(_pair('  incl. VAT', f'{line.vat:.2f}', width))
    if quote.emergency_credit_recovered:
        out.append(
            _pair(
                'Emergency credit repayment',
                f'{quote.emergency_credit_recovered:.2f}',
                width,
            )
        )
    if quote.debt_recovered:
        out.append(_pair('Debt recovery', f'{quote.debt_recovered:.2f}', width))
    for use in quote.blocks:
        out.append(
            _pair(f'Block {use.block}: {use.kwh} kWh @ {use.price}', '', width).rstrip()
        )
    out.append(_pair('Energy', f'{quote.energy_amount + quote.energy_vat:.2f}', width))
    out.append(_pair('  incl. VAT', f'{quote.energy_vat:.2f}', width))
    vat = quote.energy_vat + sum((c.vat for c in deductions), ZERO)
    out.append(_pair('Total VAT', f'{vat:.2f}', width))
    if quote.debt_remaining:
        out.append(_pair('Debt remaining', f'{quote.debt_remaining:.2f}', width))
    if quote.credit_amount:
        out.append(_pair('Credit to account', f'{quote.credit_amount:.2f}', width))
    out.append('-' * width)
    out.append(_pair('kWh', f'{quote.units_kwh}', width))
    if quote.fbe_kwh:
        out.append(_pair('Free basic electricity', f'{quote.fbe_kwh} kWh', width))
    out.append(
        _pair('Month to date after vend', f'{quote.month_to_date_kwh} kWh', width)
    )
    return '\n'.join(out)


def group_token(digits: str) -> str:
    "20 digits in groups of four, as printed and keyed in"
    return ' '.join(digits[i : i + 4] for i in range(0, len(digits), 4))


class VendWizardStart(ModelView):
    "Sell Electricity: find the customer"

    __name__ = 'prepaid.vend.wizard.start'

    search = fields.Char(
        "Search",
        help="Meter number, customer number, name or phone number.",
    )
    matches = fields.Many2Many('prepaid.meter', None, None, "Matches", readonly=True)
    meter = fields.Many2One(
        'prepaid.meter',
        "Meter",
        domain=[('id', 'in', Eval('matches', []))],
        help="The meter to sell on (pick one of the matches).",
    )
    sales_point = fields.Many2One('prepaid.sales_point', "Sales Point", readonly=True)
    idempotency_key = fields.Char("Request Key", readonly=True)

    @fields.depends('search')
    def on_change_with_matches(self):
        return [m.id for m in find_meters(self.search)]

    @fields.depends('search', 'meter', methods=['on_change_with_matches'])
    def on_change_search(self):
        matches = self.on_change_with_matches()
        if len(matches) == 1:
            self.meter = matches[0]
        elif self.meter and self.meter.id not in matches:
            self.meter = None


def find_meters(text: str | None, limit: int = MAX_MATCHES) -> list:
    """Installed meters matching text: the meter number, or the customer's
    number, name or phone (one search field for the cashier)."""
    pool = Pool()
    Meter = pool.get('prepaid.meter')
    Party = pool.get('party.party')
    text = (text or '').strip()
    if len(text) < 2:
        return []
    like = f'%{text}%'
    meters = Meter.search(
        [('serial', 'ilike', like), ('state', '=', 'installed')], limit=limit
    )
    parties = Party.search(
        [
            'OR',
            ('rec_name', 'ilike', like),
            ('contact_mechanisms.value', 'ilike', like),
        ],
        limit=limit,
    )
    if parties:
        found = {m.id for m in meters}
        meters += [
            m
            for m in Meter.search(
                [
                    ('customer', 'in', [p.id for p in parties]),
                    ('state', '=', 'installed'),
                ],
                limit=limit,
            )
            if m.id not in found
        ]
    return meters[:limit]


class VendWizardSale(ModelView):
    "Sell Electricity: tender"

    __name__ = 'prepaid.vend.wizard.sale'

    meter = fields.Many2One('prepaid.meter', "Meter", readonly=True)
    customer = fields.Many2One('party.party', "Customer", readonly=True)
    service_point = fields.Many2One(
        'prepaid.service_point', "Service Point", readonly=True
    )
    tariff = fields.Many2One('prepaid.tariff', "Tariff", readonly=True)
    last_vends = fields.Many2Many(
        'prepaid.vend', None, None, "Last Vends", readonly=True
    )
    debts = fields.Many2Many('prepaid.debt', None, None, "Open Debts", readonly=True)
    debt_total = fields.Numeric("Debt Outstanding", digits=(16, 2), readonly=True)
    emergency_owed = fields.Numeric(
        "Emergency Credit Owed", digits=(16, 2), readonly=True
    )
    key_changes = fields.Text("Pending Key Changes", readonly=True)
    payment_method = fields.Selection(COUNTER_METHODS, "Payment Method", required=True)
    tender = Amount(
        "Tender",
        digits=(16, 2),
        states={'required': ~Bool(Eval('requested_kwh'))},
        help="Money received; leave empty to sell a number of kWh.",
    )
    requested_kwh = Amount(
        "Requested kWh",
        digits=(16, 1),
        help="Sell this many kWh: the tender is computed.",
    )
    quote = fields.Text("Trial Quote", readonly=True)


class VendWizardReceipt(ModelView):
    "Sell Electricity: receipt"

    __name__ = 'prepaid.vend.wizard.receipt'

    vend = fields.Many2One('prepaid.vend', "Vend", readonly=True)
    tokens = fields.Text("Tokens (enter in this order)", readonly=True)
    receipt = fields.Text("Receipt", readonly=True)


class VendWizard(Wizard):
    "Sell Electricity"

    __name__ = 'prepaid.vend.wizard'

    start = StateView(
        'prepaid.vend.wizard.start',
        'prepaid_vending.vend_wizard_start_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Next", 'select', 'tryton-forward', default=True),
        ],
    )
    select = StateTransition()
    sale = StateView(
        'prepaid.vend.wizard.sale',
        'prepaid_vending.vend_wizard_sale_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Back", 'start', 'tryton-back'),
            Button("Trial", 'trial', 'tryton-search'),
            Button("Issue", 'issue', 'tryton-ok', default=True),
        ],
    )
    trial = StateTransition()
    issue = StateTransition()
    receipt = StateView(
        'prepaid.vend.wizard.receipt',
        'prepaid_vending.vend_wizard_receipt_view_form',
        [
            Button("Print", 'print_', 'tryton-print'),
            Button("Close", 'end', 'tryton-close', default=True),
        ],
    )
    print_ = StateReport('prepaid.vend.receipt')

    # ------------------------------------------------------------ step 1
    def default_start(self, fields):
        pool = Pool()
        Session = pool.get('prepaid.cashier.session')
        # Set on the state record, not only returned: the session keeps it for
        # every later step (the client does not send readonly fields back).
        if not self.start.idempotency_key:
            self.start.idempotency_key = uuid.uuid4().hex
        values = {'idempotency_key': self.start.idempotency_key}
        # The cashier's open shift gives the sales point; without one the
        # wizard still opens (to look a customer up) but cannot issue.
        sessions = Session.search(
            [('cashier', '=', Transaction().user), ('state', '=', 'open')],
            limit=1,
        )
        if sessions:
            self.start.sales_point = sessions[0].sales_point
            values['sales_point'] = sessions[0].sales_point.id
        meter = self._context_meter()
        if self.start.search:
            # Back from step 2: show again what was found.
            values.update(
                search=self.start.search,
                matches=[m.id for m in find_meters(self.start.search)],
                meter=self.start.meter.id if self.start.meter else None,
            )
        elif meter:
            values.update(search=meter.serial, matches=[meter.id], meter=meter.id)
        return values

    def _context_meter(self):
        "The meter the wizard was started from (a meter or service point form)"
        model = Transaction().context.get('active_model')
        record = self.record if model else None
        if model == 'prepaid.meter':
            return record
        if model == 'prepaid.service_point' and record:
            return record.meter
        return None

    def transition_select(self):
        meter = self.start.meter
        if not meter:
            matches = list(self.start.matches or find_meters(self.start.search))
            if len(matches) != 1:
                raise UserError(
                    gettext(
                        'prepaid_vending.msg_vend_wizard_choose_meter',
                        search=self.start.search or '',
                        count=len(matches),
                    )
                )
            meter = self.start.meter = matches[0]
        return 'sale'

    # ------------------------------------------------------------ step 2
    def default_sale(self, fields):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Debt = pool.get('prepaid.debt')
        Emergency = pool.get('prepaid.emergency_credit')
        Tariff = pool.get('prepaid.tariff')
        meter = self.start.meter
        customer = meter.customer
        debts = Debt.open_debts(customer) if customer else []
        try:
            tariff = Tariff.for_meter(meter, _today()).id
        except UserError:
            tariff = None  # shown empty; Trial and Issue say why
        values = {
            'meter': meter.id,
            'customer': customer.id if customer else None,
            'service_point': meter.service_point.id if meter.service_point else None,
            'tariff': tariff,
            'last_vends': [v.id for v in Vend.last_vends(meter, 5)],
            'debts': [d.id for d in debts],
            'debt_total': sum((d.balance for d in debts), ZERO),
            'emergency_owed': sum(
                (e.outstanding for e in Emergency.open_credits(meter)), ZERO
            ),
            'key_changes': pending_key_changes(meter),
            'payment_method': 'cash',
        }
        # Keep the cashier's input when coming back from Trial.
        for name in ('payment_method', 'tender', 'requested_kwh', 'quote'):
            value = getattr(self.sale, name, None)
            if value is not None:
                values[name] = value
        return values

    def _vend_args(self):
        tender, kwh = self.sale.tender, self.sale.requested_kwh
        if kwh is not None:
            return None, kwh
        if tender is None:
            raise UserError(gettext('prepaid_vending.msg_vend_wizard_no_tender'))
        return tender, None

    def transition_trial(self):
        Vend = Pool().get('prepaid.vend')
        tender, kwh = self._vend_args()
        quote = Vend.trial(self.start.meter, tender=tender, requested_kwh=kwh)
        self.sale.quote = quote_text(quote)
        return 'sale'

    def transition_issue(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Session = pool.get('prepaid.cashier.session')
        tender, kwh = self._vend_args()
        sales_point = self.start.sales_point
        if sales_point is None:
            sessions = Session.search(
                [('cashier', '=', Transaction().user), ('state', '=', 'open')],
                limit=1,
            )
            if not sessions:
                raise UserError(gettext('prepaid_vending.msg_vend_wizard_no_shift'))
            sales_point = self.start.sales_point = sessions[0].sales_point
        vend = Vend.vend(
            self.start.meter,
            tender,
            self.sale.payment_method,
            sales_point,
            self.start.idempotency_key,
            requested_kwh=kwh,
            channel='counter',
        )
        self.receipt.vend = vend
        return 'receipt'

    # ------------------------------------------------------------ step 3
    def default_receipt(self, fields):
        vend = self.receipt.vend
        return {
            'vend': vend.id,
            'tokens': '\n'.join(
                f'{t.description or t.kind}: {group_token(t.token)}'
                for t in vend.tokens
            ),
            'receipt': receipt_text(vend),
        }

    def do_print_(self, action):
        vend = self.receipt.vend
        return action, {'id': vend.id, 'ids': [vend.id], 'model': 'prepaid.vend'}

    def transition_print_(self):
        return 'receipt'


def pending_key_changes(meter) -> str:
    """The STS key changes waiting to be entered on meter (prepaid_sts is not
    a dependency of this module, hence the look-up in the pool)."""
    pool = Pool()
    try:
        KeyChange = pool.get('prepaid.sts.key_change')
    except KeyError:
        return ''
    with without_check_access():
        return '\n'.join(
            f'{k.rec_name}: {len(k.tokens)} tokens, printed with the next vend'
            for k in KeyChange.pending_for(meter)
        )


def _today():
    Date = Pool().get('ir.date')
    return Date.today()
