"""The cashier's Sell Electricity wizard: find the customer, quote, issue.

The wizard holds no vending logic: the quote is ``Vend.trial`` (nothing
written), recomputed by the form's on_change as the tender is entered, and
Issue is ``Vend.vend``.  A meter that cannot receive what the sale would send
is refused when it is picked and at every quote, before any money is taken
(``vend_pipeline.check_meter``).

Its idempotency key is generated once, when the wizard starts, and kept in
the wizard session: a double click on Issue or a client that retries the
request after a time-out reaches ``Vend.vend`` with the same key and gets the
vend already issued back, so the customer is charged once.

A client may write any field of a wizard's session, so the result step never
trusts a vend id from it: it shows the vend that carries this session's
request key, sold by this user since the session started
(``VendWizard._issued_vend``); the receipt's first print is the original,
every other one a logged reprint (receipt.py).
"""

import html
import uuid
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.pyson import Bool, Eval
from trytond.transaction import Transaction, check_access, without_check_access
from trytond.wizard import (
    Button,
    StateReport,
    StateTransition,
    StateView,
    Wizard,
)

from . import vend_pipeline
from .amounts import Amount
from .delivery import DELIVERY_STATES, group_digits, vend_delivery
from .receipt import energy_label, gross_price, token_label
from .vend import PAYMENT_METHODS

# Emergency credit is advanced by its own flow, never sold at the counter.
COUNTER_METHODS = [m for m in PAYMENT_METHODS if m[0] != 'emergency']
MAX_MATCHES = 20
ZERO = Decimal(0)
#: Colours of the delivery status on the result (sao's rich text).
DELIVERY_COLOURS = {
    'confirmed': '#2e7d32',
    'account': '#2e7d32',
    'pending': '#b26a00',
    'failed': '#c62828',
    'cancelled': '#c62828',
}


def group_token(digits: str) -> str:
    "20 digits in groups of four, as printed and keyed in"
    return group_digits(digits)


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
    # The cashier's company only: another utility may use the same numbers.
    company = ('company', '=', Transaction().context.get('company', -1))
    meters = Meter.search(
        [company, ('serial', 'ilike', like), ('state', '=', 'installed')],
        limit=limit,
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
                    company,
                    ('customer', 'in', [p.id for p in parties]),
                    ('state', '=', 'installed'),
                ],
                limit=limit,
            )
            if m.id not in found
        ]
    return meters[:limit]


class VendWizardLine(ModelView):
    "Sell Electricity: one line of a quote or a vend"

    __name__ = 'prepaid.vend.wizard.line'

    description = fields.Char("Description", readonly=True)
    amount = fields.Numeric(
        "Amount", digits=(16, 2), readonly=True, help="VAT included."
    )
    vat = fields.Numeric("incl. VAT", digits=(16, 2), readonly=True)


QUOTE_FIELDS = [
    'quote_lines',
    'units_kwh',
    'fbe_kwh',
    'total_vat',
    'debt_remaining',
    'credit_amount',
    'month_kwh_after',
]


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
        'prepaid.vend',
        None,
        None,
        "Last Vends",
        readonly=True,
        help="The last vends of this meter that you may see.",
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
    quote_message = fields.Char(
        "Quote",
        readonly=True,
        states={'invisible': ~Eval('quote_message')},
        help="Why no quote can be given for what is entered.",
    )
    quote_lines = fields.One2Many(
        'prepaid.vend.wizard.line', None, "Quote", readonly=True
    )
    quote_tender = fields.Numeric("To Pay", digits=(16, 2), readonly=True)
    units_kwh = fields.Numeric("Energy (kWh)", digits=(16, 1), readonly=True)
    fbe_kwh = fields.Numeric(
        "Free Basic Electricity (kWh)", digits=(16, 1), readonly=True
    )
    total_vat = fields.Numeric("Total VAT", digits=(16, 2), readonly=True)
    debt_remaining = fields.Numeric("Debt Remaining", digits=(16, 2), readonly=True)
    credit_amount = fields.Numeric("Credit to Account", digits=(16, 2), readonly=True)
    month_kwh_after = fields.Numeric(
        "Month to Date after Sale (kWh)", digits=(16, 1), readonly=True
    )

    @fields.depends('meter', 'tender', 'requested_kwh', *QUOTE_FIELDS)
    def on_change_tender(self):
        self.update_quote()

    @fields.depends('meter', 'tender', 'requested_kwh', *QUOTE_FIELDS)
    def on_change_requested_kwh(self):
        self.update_quote()

    def update_quote(self):
        """The quote of what is entered, in fields (nothing written); a
        refusal (meter, limits, tariff) goes to quote_message, so that typing
        never raises an error dialog: Issue still refuses."""
        Vend = Pool().get('prepaid.vend')
        quote, message = None, None
        if self.meter and (self.tender is not None or self.requested_kwh):
            # Only selling staff get quotes: trial reads debts and tariffs.
            vend_pipeline.check_vend_user()
            try:
                with without_check_access():
                    quote = Vend.trial(
                        self.meter,
                        tender=None if self.requested_kwh else self.tender,
                        requested_kwh=self.requested_kwh or None,
                    )
                    calculator = tariff_calculator(self.meter)
            except UserError as error:
                message = error.message
        self.quote_message = message
        if quote is None:
            self.quote_lines = []
            for name in QUOTE_FIELDS[1:] + ['quote_tender']:
                setattr(self, name, None)
            return
        self.quote_lines = quote_lines(quote, calculator)
        self.quote_tender = quote.tender
        self.units_kwh = quote.units_kwh
        self.fbe_kwh = quote.fbe_kwh or None
        deductions = [quote.channel_fee, *quote.charges]
        self.total_vat = quote.energy_vat + sum((c.vat for c in deductions), ZERO)
        self.debt_remaining = quote.debt_remaining or None
        self.credit_amount = quote.credit_amount or None
        self.month_kwh_after = quote.month_to_date_kwh


def tariff_calculator(meter):
    "The tariff calculator in force for meter today"
    pool = Pool()
    Tariff = pool.get('prepaid.tariff')
    today = _today()
    return Tariff.for_meter(meter, today).version_at(today).pricing().calculator


def quote_lines(quote, calculator, line=None) -> list:
    """The lines of a quote, VAT included as on the receipt: deductions, then
    the energy of each block with its price on the same VAT basis (line: the
    record class, prepaid.vend.wizard.line by default)."""
    Line = line or Pool().get('prepaid.vend.wizard.line')
    lines = []
    for charge in (quote.channel_fee, *quote.charges):
        if charge.amount or charge.vat:
            lines.append(
                Line(description=charge.name, amount=charge.gross, vat=charge.vat)
            )
    if quote.emergency_credit_recovered:
        lines.append(
            Line(
                description="Emergency credit repayment",
                amount=quote.emergency_credit_recovered,
                vat=ZERO,
            )
        )
    if quote.debt_recovered:
        lines.append(
            Line(description="Debt recovery", amount=quote.debt_recovered, vat=ZERO)
        )
    energy = quote.energy_amount + quote.energy_vat
    if quote.blocks:
        for use in quote.blocks:
            lines.append(
                Line(
                    description=energy_label(
                        f"Block {use.block}",
                        use.kwh,
                        gross_price(use.price, calculator),
                    ),
                    amount=None,
                    vat=None,
                )
            )
        # The blocks' money is one energy line with its VAT, as booked.
        lines.append(Line(description="Energy", amount=energy, vat=quote.energy_vat))
    elif energy:
        label = "Credit to account" if quote.credit_amount else "Energy"
        lines.append(Line(description=label, amount=energy, vat=quote.energy_vat))
    return lines


class VendWizardReceipt(ModelView):
    "Sell Electricity: result"

    __name__ = 'prepaid.vend.wizard.receipt'

    vend = fields.Many2One('prepaid.vend', "Receipt", readonly=True)
    token_display = fields.Text(
        "Token", readonly=True, states={'invisible': ~Eval('tokens')}
    )
    tokens = fields.Text(
        "Tokens (enter in this order)",
        readonly=True,
        help="The same tokens as plain text, to copy.",
    )
    delivery_state = fields.Selection(
        DELIVERY_STATES,
        "Delivery",
        readonly=True,
        states={'invisible': ~Eval('delivery_state')},
    )
    delivery_display = fields.Text(
        "Delivery Status",
        readonly=True,
        states={'invisible': ~Eval('delivery_state')},
    )
    delivery_status = fields.Text("Delivery Details", readonly=True)
    tender = fields.Numeric("Tender", digits=(16, 2), readonly=True)
    units_kwh = fields.Numeric("Energy (kWh)", digits=(16, 1), readonly=True)
    total_vat = fields.Numeric("Total VAT", digits=(16, 2), readonly=True)
    debt_remaining = fields.Numeric("Debt Remaining", digits=(16, 2), readonly=True)
    lines = fields.One2Many('prepaid.vend.wizard.line', None, "Lines", readonly=True)


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
    # No default button: Enter in the tender shows the quote, it never sells.
    sale = StateView(
        'prepaid.vend.wizard.sale',
        'prepaid_vending.vend_wizard_sale_view_form',
        [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Back", 'start', 'tryton-back'),
            Button("Issue", 'issue', 'tryton-ok'),
        ],
    )
    issue = StateTransition()
    receipt = StateView(
        'prepaid.vend.wizard.receipt',
        'prepaid_vending.vend_wizard_receipt_view_form',
        [
            Button("Print", 'print_', 'tryton-print'),
            Button(
                "Check Delivery",
                'refresh',
                'tryton-refresh',
                states={'invisible': Eval('delivery_state') != 'pending'},
            ),
            Button("Close", 'end', 'tryton-close', default=True),
        ],
    )
    refresh = StateTransition()
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
        # A meter that cannot buy or cannot receive is refused here, before
        # the customer hands over any money.
        vend_pipeline.check_meter(meter)
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
        debts = Debt.open_debts(customer, meter.company) if customer else []
        try:
            tariff = Tariff.for_meter(meter, _today()).id
        except UserError:
            tariff = None  # shown empty; the quote and Issue say why
        # The last vends the user may read (a cashier: their own), so that
        # the list never shows a row it cannot read.
        with check_access():
            last_vends = Vend.search(
                [('meter', '=', meter.id)],
                limit=5,
                order=[('date', 'DESC'), ('id', 'DESC')],
            )
        values = {
            'meter': meter.id,
            'customer': customer.id if customer else None,
            'service_point': meter.service_point.id if meter.service_point else None,
            'tariff': tariff,
            'last_vends': [v.id for v in last_vends],
            'debts': [d.id for d in debts],
            'debt_total': sum((d.balance for d in debts), ZERO),
            'emergency_owed': sum(
                (e.outstanding for e in Emergency.open_credits(meter)), ZERO
            ),
            'key_changes': meter.vend_pending_key_changes(),
            'payment_method': 'cash',
        }
        # Keep the cashier's input when coming back to this step.
        for name in ('payment_method', 'tender', 'requested_kwh'):
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
        Vend.vend(
            self.start.meter,
            tender,
            self.sale.payment_method,
            sales_point,
            self.start.idempotency_key,
            requested_kwh=kwh,
            channel='counter',
        )
        return 'receipt'

    # ------------------------------------------------------------ step 3
    def _issued_vend(self):
        """The vend this wizard issued: the one with the session's request
        key, sold by this user since the session started, and readable by
        the user (record rules).  Never a vend id sent by the client."""
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Session = pool.get('ir.session.wizard')
        user = Transaction().user
        key = self.start.idempotency_key
        session = Session(self._session_id)
        domain = [('idempotency_key', '=', key or '')]
        if user:
            domain.append(('cashier', '=', user))
        with check_access():
            vends = Vend.search(domain, limit=1)
        if not key or not vends or vends[0].create_date < session.create_date:
            raise AccessError(gettext('prepaid_vending.msg_vend_wizard_no_vend'))
        return vends[0]

    def default_receipt(self, fields):
        vend = self._issued_vend()
        delivery = vend_delivery(vend)
        # What the customer takes away comes first and largest: the tokens.
        tokens = [(token_label(t), t.grouped) for t in vend.tokens]
        calculator = None
        energy = [x for x in vend.lines if x.kind == 'energy']
        if energy:
            calculator = vend.tariff_version.pricing().calculator
        return {
            'vend': vend.id,
            'token_display': token_html(tokens),
            'tokens': '\n'.join(f'{digits}  ({label})' for label, digits in tokens),
            'delivery_state': delivery.state if delivery else None,
            'delivery_display': delivery_html(delivery) if delivery else '',
            'delivery_status': (
                '\n'.join(filter(None, [delivery.status, delivery.way_forward]))
                if delivery
                else ''
            ),
            'tender': vend.tender,
            'units_kwh': vend.units_kwh,
            'total_vat': vend.vat_amount,
            'debt_remaining': vend.debt_remaining or None,
            'lines': [receipt_line(x, calculator) for x in vend.lines],
        }

    def transition_refresh(self):
        return 'receipt'

    def do_print_(self, action):
        vend = self._issued_vend()
        # The report decides whether this print is the original (receipt.py).
        return action, {
            'id': vend.id,
            'ids': [vend.id],
            'model': 'prepaid.vend',
            'original': True,
        }

    def transition_print_(self):
        return 'receipt'


def receipt_line(line, calculator) -> dict:
    "A vend line as the result shows it (values of prepaid.vend.wizard.line)"
    description = line.description
    if line.kind == 'energy' and line.kwh is not None and line.price is not None:
        description = energy_label(
            line.description, line.kwh, gross_price(line.price, calculator)
        )
    return {'description': description, 'amount': line.gross, 'vat': line.vat}


def token_html(tokens: list[tuple[str, str]]) -> str:
    """The tokens as sao/Tryton rich text: large bold digits, centred (the
    subset of HTML their rich-text widget keeps: div, b, font)."""
    parts = []
    for label, digits in tokens:
        parts.append(
            f'<div align="center">{_escape(label)}</div>'
            f'<div align="center"><font size="6" face="monospace"><b>'
            f'{_escape(digits)}</b></font></div>'
        )
    return ''.join(parts)


def delivery_html(delivery) -> str:
    colour = DELIVERY_COLOURS.get(delivery.state, '#000000')
    parts = [
        f'<div><font size="4" color="{colour}"><b>{_escape(delivery.status)}'
        '</b></font></div>'
    ]
    if delivery.way_forward:
        parts.append(f'<div>{_escape(delivery.way_forward)}</div>')
    parts += [
        f'<div align="center"><font size="5" face="monospace"><b>'
        f'{_escape(group_digits(t))}</b></font></div>'
        for t in delivery.tokens
    ]
    return ''.join(parts)


def _escape(text: str) -> str:
    return html.escape(text or '')


def _today():
    Date = Pool().get('ir.date')
    return Date.today()
