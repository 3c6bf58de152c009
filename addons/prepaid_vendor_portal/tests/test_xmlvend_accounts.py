"""Free basic electricity on its own, account payments and the vendor
statement through the XMLVend route on the real vending core: a zeep client
built from the served WSDL for each happy path, werkzeug's client for the
faults and the byte-for-byte retries."""

from __future__ import annotations

import datetime as dt
import time
import unittest
from decimal import Decimal

import pytest
import zeep
from trytond.modules.prepaid_vending import booking
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.modules.prepaid_vendor_portal.xmlvend.namespaces import BASE, REVENUE
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME
from trytond.transaction import Transaction
from trytond.wsgi import app

from .vendor_fixtures import TOKEN
from .wsgi_pump import Pump
from .xmlvend_route_fixtures import (
    ADDRESS,
    CONTENT_TYPES,
    URL,
    XMLVendRouteMixin,
    by_msno,
    committed,
    credit_vend,
    envelope,
    header,
)

pytestmark = pytest.mark.database
D = Decimal


class Wire:
    "A zeep client of the served WSDL, speaking as seller's terminal"

    def __init__(self, base: str, seller) -> None:
        self.client = zeep.Client(base + URL + '?wsdl')
        self.service = self.client.bind('XMLVendService2.1', 'XMLVendServicePort')
        self.seller = seller

    def t(self, ns, name, **kwargs):
        return self.client.get_type(f'{{{ns}}}{name}')(**kwargs)

    def header(self, number: str) -> dict:
        return {
            'clientID': self.t(BASE, 'EANDeviceID', ean=self.seller.client_id),
            'terminalID': self.t(BASE, 'GenericDeviceID', id=self.seller.terminal_id),
            'msgID': self.t(
                BASE, 'MsgID', dateTime='20260301120000', uniqueNumber=number
            ),
            'authCred': self.t(BASE, 'AuthCred', opName='TILL', password=TOKEN),
        }

    def id_method(self, msno: str):
        return self.t(
            BASE,
            'VendIDMethod',
            meterIdentifier=self.t(BASE, 'MeterNumber', msno=msno),
        )


class AccountsMixin(XMLVendRouteMixin):
    def setUp(self):
        super().setUp()
        # The booking task a vend pushes is held back by its throttle: the
        # test books when it says so (the cron's book_pending).
        booking._last_push[DB_NAME] = time.monotonic()

    def tearDown(self):
        booking._last_push.pop(DB_NAME, None)
        env = self.env

        def write_off():
            # The fixtures' customer is shared by the utilities, and the
            # vending core recovers every open debt of a customer: a debt
            # left open would be recovered by other tests' vends.
            Debt = Pool().get('prepaid.debt')
            with Transaction().set_context(company=env.company):
                debts = Debt.search(
                    [('company', '=', env.company), ('state', '=', 'open')]
                )
                if debts:
                    Debt.write_off(debts, 'end of test')

        committed(write_off)
        super().tearDown()

    def raw(self, message: x.BaseReq) -> tuple[int, bytes]:
        "(HTTP status, the answer's bytes)"
        reply = self.client.post(
            URL,
            data=envelope(message),
            headers={'Content-Type': CONTENT_TYPES['1.1']},
            environ_base=ADDRESS,
        )
        return reply.status_code, reply.data

    def zeep(self, call):
        "call(Wire) on a zeep client of the served WSDL over HTTP"
        with Pump(app) as pump:
            return pump.run(lambda: call(Wire(pump.base, self.seller)))

    def state(self) -> dict:
        "The vendor's float (position and ledger), vends, sales, answers, debts"
        seller, env = self.seller, self.env

        def read():
            pool = Pool()
            Vendor = pool.get('prepaid.vendor')
            Position = pool.get('prepaid.vendor.float')
            Vend = pool.get('prepaid.vend')
            Sale = pool.get('prepaid.vendor.sale')
            Answer = pool.get('prepaid.vendor.xmlvend.answer')
            Debt = pool.get('prepaid.debt')
            Meter = pool.get('prepaid.meter')
            vendor = Vendor(seller.vendor)
            customer = Meter(env.meter_id).customer
            debts = Debt.search(
                [('company', '=', env.company), ('party', '=', customer.id)],
                order=[('id', 'ASC')],
            )
            return {
                'available': vendor.float_state().available,
                'ledger': Position.ledger_balances([vendor])[vendor.id],
                'drift': Position.drift([vendor])[vendor.id],
                'vends': Vend.search_count([('company', '=', env.company)]),
                'sales': Sale.search_count([('vendor', '=', vendor.id)]),
                'answers': Answer.search_count([('terminal', '=', seller.terminal)]),
                'debts': [(d.id, d.state, d.balance) for d in debts],
            }

        return committed(read)

    def add_debt(self, amount: str) -> int:
        env = self.env

        def make():
            pool = Pool()
            Debt = pool.get('prepaid.debt')
            Meter = pool.get('prepaid.meter')
            with Transaction().set_context(company=env.company):
                (debt,) = Debt.create(
                    [
                        {
                            'company': env.company,
                            'party': Meter(env.meter_id).customer.id,
                            'description': 'Arrears taken over',
                            'amount': D(amount),
                        }
                    ]
                )
                Debt.open([debt])
                return debt.id

        return committed(make)

    def pay(self, amount: str, account=None, seller=None, **changes) -> x.PayAccReq:
        return x.PayAccReq(
            **header(seller or self.seller, **changes),
            req_amt=x.Currency(value=D(amount), symbol='R'),
            pay_account=account or x.DebtRecovery(id_method=by_msno(self.env.meter)),
        )


class XMLVendPayAccountTestCase(AccountsMixin, unittest.TestCase):
    "Account payments and statements; the utility's tariff grants no FBE"

    def setUp(self):
        super().setUp()
        self.seller = self.new_seller()

    def pay_off(self) -> None:
        "Earlier tests' debts paid: the next debt is the only one open"
        owed = self.owed()
        if owed:
            rich = self.new_seller(str(owed))
            status, answer = self.post(self.pay(str(owed), seller=rich))
            self.assertEqual(status, 200, answer)

    def owed(self) -> Decimal:
        return sum((b for _, s, b in self.state()['debts'] if s == 'open'), D(0))

    def test_pay_account_with_zeep_debt_and_float(self):
        "A payment: the debt and the float down by it, booked; a retry, the same"
        self.pay_off()
        debt = self.add_debt('300.00')
        owed = self.owed()
        before = self.state()

        def pay(wire):
            return wire.service.PayAccountRequest(
                **wire.header('501'),
                reqAmt=wire.t(BASE, 'Currency', value=D('120.00'), symbol='R'),
                payAccount=wire.t(
                    REVENUE,
                    'DebtRecovery',
                    idMethod=wire.id_method(self.env.meter),
                    desc='Arrears',
                ),
            )

        answer = self.zeep(pay)
        receipt = answer.payAccReceipt
        (tx,) = receipt.transactions.tx
        self.assertEqual(tx.amt.value, D('120.00'))
        self.assertEqual(tx.balance.value, owed - D('120.00'))
        self.assertEqual(tx.accDesc, 'Arrears')
        self.assertEqual(receipt.receiptNo, tx.receiptNo)
        self.assertEqual(receipt.meterDetail.msno, self.env.meter)
        after = self.state()
        self.assertEqual(after['available'], before['available'] - D('120.00'))
        self.assertEqual(answer.clientStatus.availCredit.value, after['available'])
        # Booked at once: the ledger moves with the float, no drift.
        self.assertEqual(after['ledger'], before['ledger'] - D('120.00'))
        self.assertEqual(after['drift'], D(0))
        self.assertEqual(self.owed(), owed - D('120.00'))
        self.assertIn((debt, 'open', D('180.00')), after['debts'])
        self.assertEqual(after['vends'], before['vends'])  # no token

        def history():
            pool = Pool()
            Line = pool.get('prepaid.debt.line')
            MoveLine = pool.get('account.move.line')
            (line,) = Line.search(
                [
                    ('kind', '=', 'payment'),
                    ('description', 'like', f'%{receipt.receiptNo}%'),
                ]
            )
            moves = MoveLine.search([('move.origin', '=', str(line))])
            return (
                line.debt.id,
                line.amount,
                sorted((m.debit, m.credit, m.move.state) for m in moves),
            )

        self.assertEqual(
            committed(history),
            (
                debt,
                D('-120.00'),
                [(D('0'), D('120.00'), 'posted'), (D('120.00'), D('0'), 'posted')],
            ),
        )

        # The same msgID again: the same answer, charged once.
        again = self.zeep(pay)
        self.assertEqual(again.payAccReceipt.receiptNo, receipt.receiptNo)
        self.assertEqual(again.respDateTime, answer.respDateTime)
        self.assertEqual(self.state(), after)

    def test_pay_account_pays_debt_off_and_retry_bytes(self):
        "Paying all that is owed marks the debts paid; a retry is byte-equal"
        self.pay_off()
        debt = self.add_debt('40.00')
        owed = self.owed()
        request = self.pay(str(owed))
        status, first = self.raw(request)
        self.assertEqual(status, 200, first)
        after = self.state()
        self.assertIn((debt, 'paid', D(0)), after['debts'])
        self.assertNotIn('open', [s for _, s, _ in after['debts']])
        status, second = self.raw(request)
        self.assertEqual(status, 200)
        self.assertEqual(second, first)
        self.assertEqual(self.state(), after)
        # Nothing left to pay: DebtEx.
        status, answer = self.post(self.pay('10.00'))
        self.assertEqual(status, 500)
        self.assertFault(answer, 'DebtEx', 'owes no debt')
        self.assertEqual(self.state(), after)

    def test_pay_account_faults_change_nothing(self):
        "Above the debt, service charge, float short, bad token: nothing moves"
        self.add_debt('1000.00')
        owed = self.owed()
        before = self.state()
        status, answer = self.post(self.pay(str(owed + D('0.01'))))
        self.assertEqual(status, 500)
        self.assertFault(answer, 'DebtEx', f'more than the {owed}')
        status, answer = self.post(
            self.pay('10.00', account=x.ServiceChrg(id_method=by_msno(self.env.meter)))
        )
        self.assertFault(answer, 'ServiceChrgEx', 'only debt payments')
        status, answer = self.post(self.pay('10.00', token='x' * 40))
        self.assertFault(answer, 'ClientIDAuthorisationEx')
        status, answer = self.post(
            self.pay('10.00', account=x.DebtRecovery(id_method=by_msno('99999999999')))
        )
        self.assertFault(answer, 'UnknownMeterEx')
        # The float (500) does not cover it: VendorCreditEx, the debt stays.
        status, answer = self.post(self.pay('600.00'))
        self.assertFault(answer, 'VendorCreditEx', 'Insufficient vendor credit')
        self.assertEqual(self.state(), before)

        # Each refusal is in the request log, kept after the rollback.
        def logged():
            Log = Pool().get('prepaid.vendor.xmlvend.log')
            rows = Log.search([('terminal', '=', self.seller.terminal)])
            return sorted((r.outcome, r.fault) for r in rows)

        self.assertEqual(
            committed(logged),
            sorted(('fault', f) for f in ('DebtEx', 'ServiceChrgEx',
                                          'UnknownMeterEx', 'VendorCreditEx')),
        )  # fmt: skip

    def test_fbe_refused_without_entitlement(self):
        "A tariff without free basic electricity: FBEEx, nothing sold"
        before = self.state()
        status, answer = self.post(
            x.FBEReq(**header(self.seller), id_method=by_msno(self.env.meter))
        )
        self.assertEqual(status, 500)
        self.assertFault(answer, 'FBEEx', 'grants none')
        self.assertEqual(self.state(), before)

    def test_statement_with_zeep_matches_ledger(self):
        "Top-up, a booked sale, a payment: opening + lines = closing = ledger"
        self.add_debt('100.00')
        status, answer = self.post(credit_vend(self.seller, self.env.meter, '100.00'))
        self.assertEqual(status, 200, answer)
        committed(lambda: Pool().get('prepaid.vend').book_pending())
        status, answer = self.post(self.pay('30.00'))
        self.assertEqual(status, 200, answer)
        receipt = answer.pay_acc_receipt.receipt_no
        # A second sale not booked yet: in the available credit only.
        status, answer = self.post(credit_vend(self.seller, self.env.meter, '50.00'))
        self.assertEqual(status, 200, answer)
        state = self.state()

        def statement(wire):
            return wire.service.VendorStatementRequest(**wire.header('601'))

        answer = self.zeep(statement)
        sheet = answer.statement
        lines = [(item.desc.split(' ')[0], item.amt.value) for item in sheet.lineItem]
        self.assertEqual(
            sorted(lines),
            sorted([('Top-up', D('500.00')), ('Sale', D('-100.00')),
                    ('Sale', D('-30.00'))]),
        )  # fmt: skip
        (payment,) = [i for i in sheet.lineItem if receipt in i.desc]
        self.assertIn('Account payment', payment.desc)
        # The vendor is new: its opening balance this month is zero.
        self.assertEqual(sheet.accBal.value, sum((v for _, v in lines), D(0)))
        self.assertEqual(sheet.accBal.value, state['ledger'])
        self.assertEqual(sheet.availCredit.value, state['available'])
        self.assertEqual(state['available'], state['ledger'] - D('50.00'))
        self.assertEqual(sheet.accNo, committed(
            lambda: Pool().get('prepaid.vendor')(self.seller.vendor).code))  # fmt: skip
        for item in sheet.lineItem:
            self.assertIsNotNone(item.appliedDate.tzinfo)

        # A retry reads the statement as first answered, byte for byte.
        request = x.VendorStatementReq(**header(self.seller))
        status, first = self.raw(request)
        self.assertEqual(status, 200, first)
        self.post(credit_vend(self.seller, self.env.meter, '20.00'))
        committed(lambda: Pool().get('prepaid.vend').book_pending())
        status, second = self.raw(request)
        self.assertEqual(second, first)
        answer = x.read_response(second)
        self.assertEqual(len(answer.statement.line_item), 3)

    def test_statement_opening_balance(self):
        "Movements of an earlier month are the opening balance"
        seller = self.seller

        def backdate():
            pool = Pool()
            Vendor = pool.get('prepaid.vendor')
            Line = pool.get('account.move.line')
            vendor = Vendor(seller.vendor)
            table = Line.__table__()
            cursor = Transaction().connection.cursor()
            # The opening top-up, recorded two months ago.
            cursor.execute(
                *table.update(
                    [table.create_date],
                    [dt.datetime.now() - dt.timedelta(days=62)],
                    where=(table.account == vendor.float_account.id)
                    & (table.party == vendor.party.id),
                )
            )

        committed(backdate)
        self.add_debt('100.00')
        status, answer = self.post(self.pay('25.00'))
        self.assertEqual(status, 200, answer)
        status, answer = self.post(x.VendorStatementReq(**header(seller)))
        self.assertEqual(status, 200, answer)
        (item,) = answer.statement.line_item
        self.assertEqual(item.amt.value, D('-25.00'))
        self.assertEqual(answer.statement.acc_bal.value, D('475.00'))
        self.assertEqual(self.state()['ledger'], D('475.00'))

    def test_statement_refused_to_a_wrong_token(self):
        "An unauthenticated statement: ClientIDAuthorisationEx, nothing stored"
        before = self.state()
        status, answer = self.post(
            x.VendorStatementReq(**header(self.seller, token='y' * 40))
        )
        self.assertEqual(status, 500)
        self.assertFault(answer, 'ClientIDAuthorisationEx')
        self.assertEqual(self.state(), before)


class XMLVendFBETestCase(AccountsMixin, unittest.TestCase):
    "Free basic electricity on its own; the utility's tariff grants 50 kWh"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env

        def grant():
            pool = Pool()
            Version = pool.get('prepaid.tariff.version')
            Meter = pool.get('prepaid.meter')
            Tariff = pool.get('prepaid.tariff')
            with Transaction().set_context(company=env.company):
                meter = Meter(env.meter_id)
                tariff = Tariff.for_meter(meter, dt.date.today())
                version = tariff.version_at(dt.date.today())
                Version.write([version], {'fbe_kwh_per_month': D(50)})

        committed(grant)

    def setUp(self):
        super().setUp()
        self.seller = self.new_seller()

    def test_fbe_token_once_a_month(self):
        "The month's FBE token at zero tender; a retry, the same; again: FBEEx"
        before = self.state()

        def fbe(wire):
            return wire.service.FBERequest(
                **wire.header('701'), idMethod=wire.id_method(self.env.meter)
            )

        answer = self.zeep(fbe)
        receipt = answer.creditVendReceipt
        (tx,) = receipt.transactions.tx
        issue = tx.creditTokenIssue
        self.assertRegex(issue.token.stsCipher, r'^[0-9]{20}$')
        self.assertEqual(issue.units.value, D('50'))
        self.assertEqual(issue.desc, 'Free basic electricity')
        self.assertEqual(receipt.transactions.tenderAmt.value, D('0'))
        self.assertEqual(answer.dispHeader, 'FREE BASIC ELECTRICITY')
        after = self.state()
        # Nothing drawn from the float; the sale recorded with its batch.
        self.assertEqual(after['available'], before['available'])
        self.assertEqual(answer.clientStatus.availCredit.value, after['available'])
        self.assertEqual(after['vends'], before['vends'] + 1)
        self.assertEqual(after['sales'], before['sales'] + 1)

        def recorded():
            pool = Pool()
            Answer = pool.get('prepaid.vendor.xmlvend.answer')
            Sale = pool.get('prepaid.vendor.sale')
            (stored,) = Answer.search([('terminal', '=', self.seller.terminal)])
            (sale,) = Sale.search([('vendor', '=', self.seller.vendor)])
            return (
                stored.operation,
                stored.vend.number,
                stored.vend.tender,
                stored.vend.fbe_kwh,
                bool(stored.batch),
                sale.vend.id == stored.vend.id,
                sale.commission,
            )

        self.assertEqual(
            committed(recorded),
            ('FBERequest', receipt.receiptNo, D('0'), D('50'), True, True, D('0')),
        )

        # The same msgID again: the same token, nothing issued twice.
        again = self.zeep(fbe)
        self.assertEqual(
            again.creditVendReceipt.transactions.tx[0].creditTokenIssue.token.stsCipher,
            issue.token.stsCipher,
        )
        self.assertEqual(self.state(), after)

        # A second FBE this month (a new msgID): FBEEx, nothing issued.
        status, refused = self.post(
            x.FBEReq(**header(self.seller), id_method=by_msno(self.env.meter))
        )
        self.assertEqual(status, 500)
        self.assertFault(refused, 'FBEEx', 'already issued')
        self.assertEqual(self.state(), after)

        # A credit vend after it is charged the whole tender, no second FBE.
        status, sold = self.post(credit_vend(self.seller, self.env.meter, '100.00'))
        self.assertEqual(status, 200, sold)
        self.assertEqual(self.state()['available'], after['available'] - D('100.00'))

    def test_fbe_faults(self):
        "Unknown meter, wrong token, reused msgID: the standard faults"
        before = self.state()
        status, answer = self.post(
            x.FBEReq(**header(self.seller), id_method=by_msno('99999999999'))
        )
        self.assertFault(answer, 'UnknownMeterEx')
        status, answer = self.post(
            x.FBEReq(
                **header(self.seller, token='z' * 40), id_method=by_msno(self.env.meter)
            )
        )
        self.assertFault(answer, 'ClientIDAuthorisationEx')
        self.assertEqual(self.state(), before)

    def test_pay_account_without_debt(self):
        "A customer who owes nothing: DebtEx, the float untouched"
        before = self.state()
        status, answer = self.post(self.pay('10.00'))
        self.assertEqual(status, 500)
        self.assertFault(answer, 'DebtEx', 'owes no debt')
        self.assertEqual(self.state(), before)
