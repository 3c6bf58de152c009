"""Fixtures shared by the vend, session, credit and accounting tests.

``setup_vending`` builds, inside the current transaction, a company with a
chart of accounts, a 15 % VAT, the vending configuration, the step tariff of
docs/vending.md Example C (blocks excl. VAT 0-50 @ 1.20, 50-350 @ 1.60, >350 @ 2.10;
R50 monthly fixed charge excl. VAT) and one installed smart prepaid meter.
"""

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace

from trytond.modules.account.tests import create_chart, get_fiscalyear
from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME
from trytond.transaction import Transaction, TransactionError

from prepaid_demo.company import VENDING_ACCOUNT_CODES

D = Decimal


def _account(code_kind: str, company):
    Account = Pool().get('account.account')
    accounts = Account.search(
        [
            (f'type.{code_kind}', '=', True),
            ('company', '=', company.id),
            ('closed', '!=', True),
        ],
        limit=1,
    )
    return accounts[0]


def setup_accounting(company):
    pool = Pool()
    Account = pool.get('account.account')
    Tax = pool.get('account.tax')
    Journal = pool.get('account.journal')
    FiscalYear = pool.get('account.fiscalyear')
    create_chart(company)
    fiscalyear = get_fiscalyear(company)
    fiscalyear.save()
    FiscalYear.create_period([fiscalyear])
    revenue = _account('revenue', company)
    receivable = Account.search(
        [
            ('type.receivable', '=', True),
            ('party_required', '=', True),
            ('company', '=', company.id),
        ],
        limit=1,
    )[0]
    cash = Account.search(
        [('name', '=', 'Main Cash'), ('company', '=', company.id)], limit=1
    )
    cash = cash[0] if cash else _account('expense', company)
    expense = _account('expense', company)
    tax_account = Account.search(
        [
            ('company', '=', company.id),
            ('type', '!=', None),
            ('name', 'ilike', '%tax%'),
        ],
        limit=1,
    )[0]
    payable = Account.search(
        [
            ('type.payable', '=', True),
            ('party_required', '=', True),
            ('company', '=', company.id),
        ],
        limit=1,
    )[0]
    tax = Tax(
        name='VAT 15%',
        description='VAT 15%',
        type='percentage',
        rate=D('0.15'),
        invoice_account=tax_account,
        credit_note_account=tax_account,
        company=company,
    )
    tax.save()
    (journal,) = Journal.search([('type', '=', 'revenue')], limit=1)
    return SimpleNamespace(
        revenue=revenue,
        receivable=receivable,
        cash=cash,
        expense=expense,
        tax=tax,
        tax_account=tax_account,
        payable=payable,
        journal=journal,
        fiscalyear=fiscalyear,
    )


def setup_vending(kind='smart_prepaid', payment_mode='prepaid', tariff=None):
    """Everything a vend needs; returns a namespace of records.

    Must run inside ``set_company`` (see ``with_vending``)."""
    lock_fixture_tables()
    pool = Pool()
    Account = pool.get('account.account')
    Configuration = pool.get('prepaid.configuration')
    Category = pool.get('prepaid.customer.category')
    Party = pool.get('party.party')
    Substation = pool.get('prepaid.substation')
    Feeder = pool.get('prepaid.feeder')
    Transformer = pool.get('prepaid.transformer')
    ServicePoint = pool.get('prepaid.service_point')
    Meter = pool.get('prepaid.meter')
    SalesPoint = pool.get('prepaid.sales_point')
    Tariff = pool.get('prepaid.tariff')
    Company = pool.get('company.company')
    company = Company(Transaction().context['company'])
    acc = setup_accounting(company)
    config = Configuration(1)
    config.vend_journal = acc.journal
    config.energy_revenue_account = acc.revenue
    config.charge_revenue_account = acc.revenue
    config.fee_revenue_account = acc.revenue
    config.debt_account = acc.receivable
    config.emergency_credit_account = acc.receivable
    config.prepayment_account = acc.payable
    config.cash_account = acc.cash
    config.bank_account = acc.cash
    config.cash_difference_account = acc.expense
    # Write-offs and move-out refunds (the demo's accounts, prepaid_demo.company).
    for name, code in VENDING_ACCOUNT_CODES.items():
        (account,) = Account.search([('code', '=', code), ('company', '=', company.id)])
        setattr(config, name, account)
    config.min_vend_amount = D('10.00')
    config.max_vend_amount = D('5000.00')
    config.save()
    # The category and the customer are shared by the utilities (parties
    # are): a second company's set-up finds those of the first.
    category = Category.search([('code', '=', 'DOM')])
    category = category[0] if category else Category(name='Domestic', code='DOM')
    category.company = None
    category.save()
    tariff = tariff or Tariff(name='Domestic step', code='D1', sts_tariff_index='01')
    tariff.customer_categories = [category]
    tariff.save()
    version = example_c_version(tariff, acc.tax)
    version.save()
    customer = Party.search([('customer_number', '=', 'C0001')])
    if customer:
        (customer,) = customer
    else:
        customer = Party(name='Thandi Mokoena', customer_category=category)
        customer.customer_number = 'C0001'
        customer.save()
    substation = Substation(name='North', code='SS1')
    substation.save()
    feeder = Feeder(name='F1', code='F1', substation=substation)
    feeder.save()
    transformer = Transformer(name='T1', code='T1', feeder=feeder)
    transformer.save()
    point = ServicePoint(
        code='SP1',
        customer=customer,
        transformer=transformer,
        street='1 Main Road',
        city='Polokwane',
    )
    point.save()
    meter = new_meter('04000000001', point, kind, payment_mode)
    sales_point = SalesPoint(
        name='Head Office',
        code='HO',
        kind='office',
        cash_account=acc.cash,
        bank_account=acc.cash,
    )
    sales_point.save()
    return SimpleNamespace(
        company=company,
        config=config,
        category=category,
        tariff=tariff,
        customer=customer,
        point=point,
        meter=meter,
        sales_point=sales_point,
        transformer=transformer,
        Meter=Meter,
        **vars(acc),
    )


def example_c_version(tariff, tax, start=dt.date(2000, 1, 1)):
    "docs/vending.md Example C: blocks excl. VAT, R50 monthly fixed charge"
    pool = Pool()
    Version = pool.get('prepaid.tariff.version')
    Block = pool.get('prepaid.tariff.block')
    Charge = pool.get('prepaid.tariff.charge')
    return Version(
        tariff=tariff,
        start_date=start,
        kind='step',
        prices_include_vat=False,
        tax=tax,
        channel_fee=D(0),
        fbe_kwh_per_month=D(0),
        vat_rounding='half_up',
        blocks=[
            Block(sequence=1, from_kwh=D(0), to_kwh=D(50), price=D('1.20')),
            Block(sequence=2, from_kwh=D(50), to_kwh=D(350), price=D('1.60')),
            Block(sequence=3, from_kwh=D(350), to_kwh=None, price=D('2.10')),
        ],
        charges=[Charge(name='Fixed charge', period='monthly', amount=D('50.00'))],
    )


def new_meter(serial, point, kind='smart_prepaid', payment_mode='prepaid'):
    Meter = Pool().get('prepaid.meter')
    meter = Meter(serial=serial, kind=kind, payment_mode=payment_mode)
    meter.save()
    point.install_meter(meter, dt.date(2020, 1, 1))
    return Meter(meter.id)


def new_point(env, code, customer=None):
    ServicePoint = Pool().get('prepaid.service_point')
    point = ServicePoint(
        code=code, customer=customer or env.customer, transformer=env.transformer
    )
    point.save()
    return point


def open_session(env):
    Session = Pool().get('prepaid.cashier.session')
    return Session.open_session(env.sales_point)


#: Tables whose first write takes a table lock: the singletons' first save,
#: the fiscal year and periods (their date checks lock on PostgreSQL) and the
#: vending journal periods made when the configuration is saved.
FIXTURE_LOCKED_MODELS = (
    'account.configuration',
    'account.fiscalyear',
    'account.period',
    'prepaid.configuration',
    'account.journal.period',
)


def lock_fixture_tables() -> None:
    """Lock now the tables the fixture will lock.

    Trytond takes a table lock by restarting the transaction with the lock
    held (``Model.lock`` raises a ``TransactionError``; ``with_transaction``
    runs the test again).  Without this, every test using the fixture ran
    up to four times, once per lock, and cost four times as much."""
    transaction = Transaction()
    for name in FIXTURE_LOCKED_MODELS:
        table = Pool().get(name)._table
        if table not in transaction._locked_tables:
            # What Transaction.start does for a restart with _lock_tables.
            transaction.database.lock(transaction.connection, table)
            transaction._locked_tables.add(table)


class with_vending:
    "Context manager: company + set_company + setup_vending"

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def __enter__(self):
        company = create_company()
        self._cm = set_company(company)
        self._cm.__enter__()
        return setup_vending(**self.kwargs)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def committed_vending(build: Callable[[], dict]) -> tuple[dict, dict]:
    """For the PostgreSQL concurrency tests, whose threads need committed
    data: commit a company (made the admin's) and what ``build()`` creates in
    its context (it calls ``setup_vending``), restarting on trytond's lock
    requests.  ``build`` returns plain ids; returns (context, that dict)."""
    extras: dict = {}
    while True:
        with Transaction().start(DB_NAME, 1, **extras) as transaction:
            try:
                User = Pool().get('res.user')
                company = create_company()
                User.write(
                    [User(1)],
                    {'companies': [('add', [company.id])], 'company': company.id},
                )
                with transaction.set_context(company=company.id):
                    built = build()
            except TransactionError as exc:
                transaction.rollback()
                exc.fix(extras)
                continue
            transaction.commit()
            return {'company': company.id}, built


def wait_for_lock(table: str, mode: str = 'RowExclusiveLock') -> None:
    """Wait (up to 30 s) until another connection holds a lock of mode on
    table: a thread's transaction has reached its UPDATE (PostgreSQL)."""
    for _ in range(600):
        with Transaction().start(DB_NAME, 1) as tr:
            cursor = tr.connection.cursor()
            cursor.execute(
                'SELECT count(*) FROM pg_locks l JOIN pg_class c '
                'ON l.relation = c.oid WHERE c.relname = %s '
                'AND l.mode = %s AND l.pid <> pg_backend_pid()',
                (table, mode),
            )
            if cursor.fetchone()[0]:
                return
        threading.Event().wait(0.05)
