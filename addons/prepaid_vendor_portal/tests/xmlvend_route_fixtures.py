"""Committed fixtures for the XMLVend route tests: the route opens its own
transaction, so what it reads must be committed (as in production).

A utility with a keypad STS meter that can take a token (vending key,
tariff, customer), and per test a vendor with a float, its outlet and its
terminal with the API token of vendor_fixtures.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal
from types import SimpleNamespace

from trytond.modules.prepaid_sts.tests.tools import (
    PAN,
    StsTestMixin,
    create_vending_key,
    utility,
)
from trytond.modules.prepaid_vending.tests.tools import committed
from trytond.modules.prepaid_vending.tests.vend_fixtures import setup_vending
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.modules.prepaid_vendor_portal.vendor_float import top_up
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, activate_module
from trytond.transaction import Transaction
from trytond.wsgi import app
from werkzeug.test import Client

from .vendor_fixtures import TOKEN, create_vendor

URL = f'/{DB_NAME}/xmlvend'
CONTENT_TYPES = {'1.1': 'text/xml; charset=utf-8', '1.2': 'application/soap+xml'}
#: The till's address (limits.check refuses a request without one).
ADDRESS = {'REMOTE_ADDR': '10.1.2.3'}
_unique = itertools.count(1)


class XMLVendRouteMixin(StsTestMixin):
    """A test case that speaks XMLVend to the route as a till would: the
    vendor portal activated, a utility with a keypad meter (``env``), per
    test werkzeug's client; ``new_seller`` makes a vendor with a float."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()  # the master key of the vending keys
        activate_module('prepaid_vendor_portal')
        cls.env = build_utility(f'{cls.__name__} {uuid.uuid4().hex[:6]}')

    def setUp(self):
        super().setUp()
        self.client = Client(app)

    def new_seller(self, float_='500.00'):
        return build_vendor(self.env, uuid.uuid4().hex[:8].upper(), float_)

    def post(self, message: x.BaseReq, version='1.1'):
        "(HTTP status, the typed response or ResponseFault)"
        reply = self.client.post(
            URL,
            data=envelope(message, version),
            headers={'Content-Type': CONTENT_TYPES[version]},
            environ_base=ADDRESS,
        )
        return reply.status_code, x.read_response(reply.data)

    def assertFault(self, answer, wire_type: str, text: str = ''):
        self.assertIsInstance(answer, x.ResponseFault)
        self.assertEqual(type(answer.fault).__name__, wire_type, answer.reason)
        self.assertIn(text, answer.reason)


def build_utility(name: str) -> SimpleNamespace:
    "A utility with an installed keypad meter ready for STS tokens (ids)"

    def make():
        Meter = Pool().get('prepaid.meter')
        company = utility(name)
        with Transaction().set_context(company=company.id):
            env = setup_vending(kind='sts_keypad')
            create_vending_key()
            Meter.write(
                [env.meter],
                {
                    'sts_pan': PAN,
                    'sts_sgc': '201457',
                    'sts_krn': 1,
                    'sts_tariff_index': '01',
                    'sts_key_type': '2',
                    'sts_base_date': '14',
                    'sts_ea': '07',
                },
            )
            return SimpleNamespace(
                company=company.id,
                meter=env.meter.serial,
                meter_id=env.meter.id,
                payable=env.payable.id,
                cash=env.cash.id,
            )

    return committed(make)


def build_vendor(env: SimpleNamespace, code: str, float_: str) -> SimpleNamespace:
    "An active vendor funded with float_ and its terminal (ids and codes)"

    def make():
        pool = Pool()
        Account = pool.get('account.account')
        with Transaction().set_context(company=env.company):
            acc = SimpleNamespace(payable=Account(env.payable))
            made = create_vendor(acc, code=code, party_name=f'Vendor {code}')
            if Decimal(float_):
                top_up(
                    made.vendor,
                    Decimal(float_),
                    Account(env.cash),
                    dt.date.today(),
                    f'opening {code}',
                )
            return SimpleNamespace(
                vendor=made.vendor.id,
                terminal=made.terminal.id,
                client_id=made.terminal.client_id,
                terminal_id=made.terminal.terminal_id,
            )

    return committed(make)


def energy_tx(receipt: x.CreditVendReceipt) -> x.CreditVendTx:
    "The receipt's sale of energy (its other transactions are deductions)"
    (tx,) = [
        t
        for t in receipt.transactions.tx
        if isinstance(t, x.CreditVendTx)
        and isinstance(t.credit_token_issue, x.SaleCredTokenIssue)
    ]
    return tx


def header(seller: SimpleNamespace, token: str = TOKEN, **changes) -> dict:
    "Request header fields of seller's terminal with a fresh msgID"
    fields = {
        'client_id': x.EANDeviceID(ean=seller.client_id),
        'terminal_id': x.GenericDeviceID(id=seller.terminal_id),
        'msg_id': x.MsgID(date_time='20260301103000', unique_number=str(next(_unique))),
        'auth_cred': x.AuthCred(op_name='TILL', password=token),
    }
    fields.update(changes)
    return fields


def by_msno(msno: str) -> x.VendIDMethod:
    return x.VendIDMethod(meter_identifier=x.MeterNumber(msno=msno))


def credit_vend(seller, msno: str, amount: str, **changes) -> x.CreditVendReq:
    return x.CreditVendReq(
        **header(seller, **changes),
        id_method=by_msno(msno),
        purchase_value=x.PurchaseValueCurrency(
            amt=x.Currency(value=Decimal(amount), symbol='R')
        ),
    )


def envelope(message: x.BaseReq, version: str = '1.1') -> bytes:
    ns = {
        '1.1': 'http://schemas.xmlsoap.org/soap/envelope/',
        '1.2': 'http://www.w3.org/2003/05/soap-envelope',
    }[version]
    payload = x.encode_request(message).decode()
    return (
        f'<s:Envelope xmlns:s="{ns}"><s:Body>{payload}</s:Body></s:Envelope>'
    ).encode()


def read_state(seller: SimpleNamespace) -> dict:
    "The vendor's float, all vends, the answers kept for its terminal"

    def read():
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Vend = pool.get('prepaid.vend')
        Answer = pool.get('prepaid.vendor.xmlvend.answer')
        vendor = Vendor(seller.vendor)
        return {
            'available': vendor.float_state().available,
            'vends': Vend.search_count([]),
            'answers': Answer.search_count([('terminal', '=', seller.terminal)]),
        }

    return committed(read)
