"""Set up a utility company with its books, for the demo and for tests.

Runs through proteus (in-process or over RPC) so it goes through the same
wizards a person would use: company configuration, fiscal year with monthly
periods, the standard chart of accounts and a VAT tax.  Every step checks what
exists first, so running it twice changes nothing.

Demo and test code, not part of the modules: it imports proteus and
Tryton's test tools (``account.tests.tools``), which a server never loads.
"""

import datetime as dt
from decimal import Decimal

from proteus import Model
from trytond.modules.account.tests.tools import (
    create_chart,
    create_fiscalyear,
    get_accounts,
)
from trytond.modules.company.tests.tools import create_company

VAT_ACCOUNT_CODE = '6.3.4'  # "Excise And Sales Taxes" (a liability we owe)
#: Vending configuration field -> account code in the standard chart.
VENDING_ACCOUNT_CODES = {
    'bad_debt_account': '5.2.3',  # "Credit Loss (Reversal) On Receivables"
    'refund_account': '2.1.4',  # "Other Payables" (per party, reconciled)
    # Counter accounts of debts raised by staff (accounting.DEBT_COUNTER_ACCOUNTS)
    'debt_arrears_account': '3.2.4',  # "In Suspense Zero": cleared by the take-over
    'debt_penalty_account': '6.1.1',  # "Other Revenue"
}


def ensure_company(name='Demo Power Utility', currency_code='ZAR', config=None):
    Company = Model.get('company.company', config=config)
    Currency = Model.get('currency.currency', config=config)
    Party = Model.get('party.party', config=config)
    companies = Company.find([('party.name', '=', name)])
    if companies:
        return companies[0]
    currencies = Currency.find([('code', '=', currency_code)])
    if currencies:
        (currency,) = currencies
    else:
        currency = Currency(
            name='South African Rand',
            code=currency_code,
            symbol='R',
            rounding=Decimal('0.01'),
            digits=2,
        )
        currency.save()
    party = Party(name=name)
    party.save()
    create_company(party, currency, config=config)
    (company,) = Company.find([('party.name', '=', name)])
    return company


def ensure_fiscal_year(company, today=None, config=None):
    FiscalYear = Model.get('account.fiscalyear', config=config)
    today = today or dt.date.today()
    if FiscalYear.find(
        [
            ('company', '=', company.id),
            ('start_date', '<=', today),
            ('end_date', '>=', today),
        ]
    ):
        return
    fiscalyear = create_fiscalyear(
        company,
        today=(today.replace(month=1, day=1), today.replace(month=12, day=31)),
        config=config,
    )
    fiscalyear.click('create_period')


def ensure_chart(company, config=None):
    Account = Model.get('account.account', config=config)
    if not Account.find([('company', '=', company.id)], limit=1):
        create_chart(company, config=config)
    return get_accounts(company, config=config)


def ensure_vat(company, rate=Decimal('0.15'), config=None):
    Tax = Model.get('account.tax', config=config)
    Account = Model.get('account.account', config=config)
    name = f'VAT {rate * 100:.0f}%'
    taxes = Tax.find([('company', '=', company.id), ('name', '=', name)])
    if taxes:
        return taxes[0]
    (account,) = Account.find(
        [('company', '=', company.id), ('code', '=', VAT_ACCOUNT_CODE)]
    )
    tax = Tax(
        name=name,
        description=name,
        type='percentage',
        rate=rate,
        invoice_account=account,
        credit_note_account=account,
    )
    tax.save()
    return tax


def ensure_vending_accounts(company, config=None):
    """Point the vending configuration at the chart's bad-debt, refund and
    debt counter accounts; a value already chosen by the accountant is kept."""
    Account = Model.get('account.account', config=config)
    Configuration = Model.get('prepaid.configuration', config=config)
    vending = Configuration(1)
    changed = False
    for name, code in VENDING_ACCOUNT_CODES.items():
        if getattr(vending, name):
            continue
        accounts = Account.find(
            [('company', '=', company.id), ('code', '=', code), ('closed', '!=', True)]
        )
        if accounts:
            setattr(vending, name, accounts[0])
            changed = True
    if changed:
        vending.save()
    return vending


def finish_config_wizard(config=None):
    "Mark the first-login configuration items done, or the menu stays empty"
    Item = Model.get('ir.module.config_wizard.item', config=config)
    items = Item.find([('state', '!=', 'done')])
    for item in items:
        item.state = 'done'
    Item.save(items)


def link_admin(company, config=None):
    User = Model.get('res.user', config=config)
    (admin,) = User.find([('login', '=', 'admin')])
    if admin.company != company:
        admin.companies.append(company)
        admin.company = company
        admin.save()


def setup_company(config=None, today=None):
    company = ensure_company(config=config)
    today = today or dt.date.today()
    ensure_fiscal_year(company, today=today, config=config)
    if today.month == 12:
        # Set up in December: open next year as well, or vends on 1 January
        # find no fiscal year (later years are the accountant's task).
        new_year = dt.date(today.year + 1, 1, 1)
        ensure_fiscal_year(company, today=new_year, config=config)
    ensure_chart(company, config=config)
    ensure_vat(company, config=config)
    ensure_vending_accounts(company, config=config)
    finish_config_wizard(config=config)
    link_admin(company, config=config)
    return company


__all__ = ['setup_company']
