"""The XMLVend request samples (tests/data/xmlvend) replayed against the
demo: the demo registers their clients, terminals, operator and meters
(prepaid_demo.vendors), so each sample, sent byte for byte to the route,
gets an answer that validates against the served schema and means what the
request asked.

The route opens its own transaction: the demo is committed, in this class's
own database (conftest drops it after the class).  The samples' msgIDs carry
fixed dates (2026-03-01, a 17-digit one of 2s): the server keys its answers
on them and refuses none as stale.  Operator terminals take their API token
in the ``X-XMLVend-Token`` header (the samples' authCred is the
operator's), so every replay sends the demo's public samples token there;
the bodies are the files' bytes.
"""

from __future__ import annotations

import unittest
from decimal import Decimal
from pathlib import Path

from lxml import etree
from trytond.modules.company.tests import create_company, set_company
from trytond.modules.prepaid_sts.engine import decode_token
from trytond.modules.prepaid_sts.tests.tools import restore_master_key, set_master_key
from trytond.modules.prepaid_vending.tests.tools import committed
from trytond.modules.prepaid_vending.tests.vend_fixtures import setup_accounting
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction
from trytond.wsgi import app
from werkzeug.test import Client

from prepaid_demo import vendors
from prepaid_demo.sts import demo_decoder_key
from prepaid_demo.vending import create_demo_data, setup_demo_vending

from .xmlvend_route_fixtures import ADDRESS, URL, energy_tx

DATA = Path(__file__).parent / 'data' / 'xmlvend'
SEED = 7
HEXING_METER = '37112345678'
ESKOM_METER = '01234567890'
#: Every request sample, in a till's order: log in, confirm, quote, free
#: basic electricity, sell, ask for the last answer, reprint.
ORDER = (
    'loginReq-hexing-style-1.xml',
    'confirmCustomerReq-hexing-style-1.xml',
    'confirmMeterReq-eskom-ovs-mock-1.xml',
    'trialCreditVendReq-hexing-style-1.xml',
    'fbeReq-hexing-style-1.xml',
    'creditVendReq-hexing-style-1.xml',
    'lastRespAdviceReq-hexing-style-1.xml',
    'reprintReq-hexing-style-1.xml',
)


def payload(body: bytes) -> etree._Element:
    "The Body's element, or a Fault's detail element"
    element = etree.fromstring(body)[0][0]
    if etree.QName(element).localname == 'Fault':
        return element.find('detail')[0]
    return element


def build_demo() -> dict:
    "The demo utility with its vending set up, committed"

    def make():
        with set_company(create_company()):
            company = Pool().get('company.company')(Transaction().context['company'])
            setup_accounting(company)
            create_demo_data(seed=SEED, customers=5)
            setup_demo_vending(seed=SEED)
            Meter = Pool().get('prepaid.meter')
            keys = {
                m.serial: demo_decoder_key(m, SEED)
                for m in Meter.search([('serial', 'in', vendors.SAMPLE_METERS)])
            }
            return {'company': company.id, 'decoder_keys': keys}

    return committed(make)


class DemoSamplesTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._previous_master_key = set_master_key()
        activate_module('prepaid_vendor_portal')
        cls.demo = build_demo()

    @classmethod
    def tearDownClass(cls):
        restore_master_key(cls._previous_master_key)
        super().tearDownClass()

    def replay(self, name: str, token: str | None = vendors.SAMPLE_API_TOKEN):
        "(HTTP status, the typed answer) of the sample, checked on the schema"
        headers = {'Content-Type': 'text/xml; charset=utf-8'}
        if token:
            headers['X-XMLVend-Token'] = token
        reply = Client(app).post(
            URL,
            data=(DATA / name).read_bytes(),
            headers=headers,
            environ_base=ADDRESS,
        )
        x.xml_schema().assertValid(payload(reply.data))
        return reply.status_code, x.read_response(reply.data)

    def assertToken(self, token: str, msno: str) -> None:
        "A 20-digit credit token that the meter's decoder key accepts"
        self.assertRegex(token, r'^\d{20}$')
        decoded = decode_token(token, self.demo['decoder_keys'][msno], '07')
        self.assertTrue(decoded.crc_ok)
        self.assertGreater(decoded.amount, 0)

    def test_every_sample_gets_its_answer(self):
        "Each request sample, replayed in order, is answered as it asks"
        self.assertEqual(sorted(ORDER), sorted(p.name for p in DATA.glob('*Req-*.xml')))
        self.assertEqual(set(self.demo['decoder_keys']), set(vendors.SAMPLE_METERS))
        answers = {}
        for name in ORDER:
            with self.subTest(name):
                answers[name] = self.replay(name)

        status, login = answers['loginReq-hexing-style-1.xml']
        self.assertEqual(status, 200)
        self.assertIsInstance(login, x.LoginUser)
        self.assertEqual(login.cdu_balance, vendors.SAMPLE_FLOAT)

        status, customer = answers['confirmCustomerReq-hexing-style-1.xml']
        self.assertEqual(status, 200)
        self.assertIsInstance(customer, x.ConfirmCustomerResp)
        (result,) = customer.confirm_cust_result
        self.assertEqual(result.meter_detail.msno, HEXING_METER)
        self.assertTrue(result.cust_vend_config.can_vend)

        status, meter = answers['confirmMeterReq-eskom-ovs-mock-1.xml']
        self.assertEqual(status, 200)
        self.assertIsInstance(meter, x.ConfirmMeterResp)
        self.assertEqual(meter.confirm_meter_result.meter_detail.msno, ESKOM_METER)
        self.assertEqual(meter.req_msg_id.date_time, '22222222222222222')

        status, trial = answers['trialCreditVendReq-hexing-style-1.xml']
        self.assertEqual(status, 200)
        self.assertIsInstance(trial, x.TrialCreditVendResp)
        self.assertEqual(trial.credit_vend_receipt.transactions.tender_amt.value, 115)
        tx = energy_tx(trial.credit_vend_receipt)
        self.assertEqual(tx.credit_token_issue.token.sts_cipher, '0' * 20)

        # The demo tariffs grant no free basic electricity: the documented
        # FBEEx, nothing issued.
        status, fbe = answers['fbeReq-hexing-style-1.xml']
        self.assertEqual(status, 500)
        self.assertIsInstance(fbe, x.ResponseFault)
        self.assertEqual(type(fbe.fault).__name__, 'FBEEx')
        self.assertIn('grants none', fbe.reason)

        status, sale = answers['creditVendReq-hexing-style-1.xml']
        self.assertEqual(status, 200)
        self.assertIsInstance(sale, x.CreditVendResp)
        receipt = sale.credit_vend_receipt
        self.assertEqual(receipt.transactions.tender_amt.value, Decimal('115.00'))
        tx = energy_tx(receipt)
        self.assertEqual(tx.credit_token_issue.meter_detail.msno, HEXING_METER)
        self.assertToken(tx.credit_token_issue.token.sts_cipher, HEXING_METER)
        self.assertEqual(
            sale.client_status.avail_credit.value,
            vendors.SAMPLE_FLOAT - Decimal('115.00'),
        )

        status, advice = answers['lastRespAdviceReq-hexing-style-1.xml']
        self.assertEqual(status, 200)
        self.assertIsInstance(advice, x.LastRespAdviceResp)
        self.assertEqual(advice.last_response, sale)

        status, reprint = answers['reprintReq-hexing-style-1.xml']
        self.assertEqual(status, 200)
        self.assertIsInstance(reprint, x.ReprintResp)
        self.assertEqual(reprint.reprint, (sale,))

        # A retry of the sale is answered with the same token: no second sale.
        self.assertEqual(self.replay('creditVendReq-hexing-style-1.xml'), (200, sale))

    def test_operator_terminal_needs_the_header_token(self):
        "Without the X-XMLVend-Token header a sample is refused, nothing sold"
        status, answer = self.replay('confirmCustomerReq-hexing-style-1.xml', None)
        self.assertEqual(status, 500)
        self.assertEqual(type(answer.fault).__name__, 'ClientIDAuthorisationEx')
        status, answer = self.replay('confirmMeterReq-eskom-ovs-mock-1.xml', None)
        self.assertEqual(status, 500)
        self.assertEqual(type(answer.fault).__name__, 'ClientIDAuthorisationEx')
