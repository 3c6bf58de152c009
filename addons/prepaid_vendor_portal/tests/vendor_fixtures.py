"""A vendor with an outlet, a terminal and an operator, in the context's
company with its books (shared by the vendor tests)."""

from __future__ import annotations

from types import SimpleNamespace

from trytond.modules.prepaid_vending.tests.vend_fixtures import setup_accounting
from trytond.pool import Pool
from trytond.transaction import Transaction

TOKEN = 'k' * 40
PASSWORD = 'alice-secret-1'


def setup_books():
    "The company's chart, fiscal year, vending journal and bank account"
    pool = Pool()
    Company = pool.get('company.company')
    Configuration = pool.get('prepaid.configuration')
    company = Company(Transaction().context['company'])
    acc = setup_accounting(company)
    config = Configuration(1)
    config.vend_journal = acc.journal
    config.bank_account = acc.cash
    config.save()
    return acc


def create_vendor(acc=None, code='KB', party_name='Kwik Bank', active=True, **values):
    "A vendor (with a float account when acc, the books, is given) and its staff"
    pool = Pool()
    Party = pool.get('party.party')
    Vendor = pool.get('prepaid.vendor')
    Outlet = pool.get('prepaid.vendor.outlet')
    Terminal = pool.get('prepaid.vendor.terminal')
    Operator = pool.get('prepaid.vendor.operator')
    party = Party(name=party_name)
    party.save()
    vendor = Vendor(
        name=party_name,
        code=code,
        party=party,
        float_account=acc.payable if acc else None,
        **values,
    )
    vendor.save()
    outlet = Outlet(vendor=vendor, name='Main Branch', code=f'{code}-B1')
    outlet.save()
    terminal = Terminal(
        outlet=outlet, client_id='6004708001', terminal_id=f'{code}-T01'
    )
    terminal.api_token = TOKEN
    terminal.save()
    operator = Operator(vendor=vendor, login='alice')
    operator.password = PASSWORD
    operator.save()
    if active:
        for model, record in [
            (Vendor, vendor),
            (Outlet, outlet),
            (Terminal, terminal),
            (Operator, operator),
        ]:
            model.activate([record])
    return SimpleNamespace(
        party=party, vendor=vendor, outlet=outlet, terminal=terminal, operator=operator
    )
