"""The monthly reconciliation with a vendor in Tryton: the vendor's file
matched against its XMLVend sales, a line of each class, matching again,
files refused with nothing changed, and a dispute taken to its posted
adjustment by the roles allowed (vendor_reconciliation.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import unittest
from decimal import Decimal

import pytest
from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.model.modelview import AccessButtonError
from trytond.modules.prepaid_vending import booking
from trytond.modules.prepaid_vending.tests.staff import acting_as, create_user
from trytond.pool import Pool
from trytond.protocols.jsonrpc import JSONDecoder, JSONEncoder
from trytond.tests.test_tryton import DB_NAME
from trytond.transaction import Transaction

from .xmlvend_route_fixtures import XMLVendRouteMixin, committed, credit_vend

pytestmark = pytest.mark.database
#: What a refused role gets: no access to the model, or not the button's group.
REFUSED = (AccessError, AccessButtonError)
D = Decimal
HEADER = 'date_time,amount,msg_id,receipt,token,type\r\n'
CLASSES = {
    'matched',
    'utility_only',
    'vendor_only',
    'amount_mismatch',
    'reversed',
    'cut_off',
    'duplicate',
}


PASSWORD = 'Recon-Staff-Pass-2026!'


class JsonRpc:
    "JSON-RPC calls as sao makes them, on the werkzeug client of the test"

    def __init__(self, client):
        self.client = client
        self.authorization = None
        self.calls = 0

    def __call__(self, method: str, *params):
        self.calls += 1
        headers = {'Content-Type': 'application/json'}
        if self.authorization:
            headers['Authorization'] = self.authorization
        reply = self.client.post(
            f'/{DB_NAME}/rpc/',
            data=json.dumps(
                {'id': self.calls, 'method': method, 'params': list(params)},
                cls=JSONEncoder,
            ),
            headers=headers,
        )
        return json.loads(reply.data, object_hook=JSONDecoder())

    def login(self, login: str) -> None:
        answer = self('common.db.login', login, {'password': PASSWORD}, 'en')
        user_id, session = answer['result'][:2]
        token = base64.b64encode(f'{login}:{user_id}:{session}'.encode()).decode()
        self.authorization = f'Session {token}'


def sale_row(sale: dict) -> str:
    "The vendor's row of a sale as the utility made it (no token)"
    return (
        f'{sale["at"].isoformat()},{sale["amount"]},{sale["msg_id"]},'
        f'{sale["receipt"]},,sale\r\n'
    )


class VendorReconciliationTestCase(XMLVendRouteMixin, unittest.TestCase):
    "A vendor's month reconciled on the real backend"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def configure():
            pool = Pool()
            Account = pool.get('account.account')
            Configuration = pool.get('prepaid.configuration')
            with Transaction().set_context(company=cls.env.company):
                (difference,) = Account.search(
                    [
                        ('type.expense', '=', True),
                        ('company', '=', cls.env.company),
                        ('closed', '!=', True),
                        ('id', '!=', cls.env.cash),
                    ],
                    limit=1,
                )
                Configuration.write(
                    [Configuration(1)],
                    {
                        'vendor_reconciliation_account': difference.id,
                        'cancel_policy': 'manager',
                    },
                )
                return difference.id

        cls.difference_account = committed(configure)

    def setUp(self):
        super().setUp()
        booking._last_push[DB_NAME] = time.monotonic()
        self.seller = self.new_seller(float_='2000.00')

    def tearDown(self):
        booking._last_push.pop(DB_NAME, None)
        super().tearDown()

    # -- helpers --------------------------------------------------------------
    def sell(self, amount: str) -> dict:
        "One sale over XMLVend; its msgID, receipt, token and time"
        message = credit_vend(self.seller, self.env.meter, amount)
        status, answer = self.post(message)
        self.assertEqual(status, 200, answer)

        def read():
            Sale = Pool().get('prepaid.vendor.sale')
            (sale,) = Sale.search(
                [('vendor', '=', self.seller.vendor)], order=[('id', 'DESC')], limit=1
            )
            return {
                'vend': sale.vend.id,
                'msg_id': message.msg_id.key,
                'receipt': sale.vend.number,
                'token': sale.vend.tokens[0].token,
                'at': sale.sold_at.replace(tzinfo=dt.UTC),
                'amount': sale.vend.tender,
            }

        return committed(read)

    def cancel(self, sale: dict) -> None:
        def run():
            Vend = Pool().get('prepaid.vend')
            Vend.cancel_vends([Vend(sale['vend'])], 'customer refunded')

        committed(run, context={'company': self.env.company})

    def month(self) -> dt.date:
        return dt.datetime.now(dt.UTC).date().replace(day=1)

    def new_reconciliation(self, data: bytes) -> int:
        def make():
            Reconciliation = Pool().get('prepaid.vendor.reconciliation')
            (record,) = Reconciliation.create(
                [
                    {
                        'company': self.env.company,
                        'vendor': self.seller.vendor,
                        'month': self.month(),
                        'file': data,
                        'file_name': 'kb.csv',
                    }
                ]
            )
            return record.id

        return committed(make)

    def user(self, login: str, *groups) -> int:
        return committed(
            lambda: create_user(f'{login}_{self.seller.vendor}', *groups).id,
            context={'company': self.env.company},
        )

    def as_user(self, user_id: int, func):
        "func() as user_id through RPC's checks, committed"

        def run():
            with acting_as(user_id):
                return func()

        return committed(run, context={'company': self.env.company})

    def press(self, user_id: int, model: str, button: str, ids: list[int]):
        def run():
            Model = Pool().get(model)
            getattr(Model, button)([Model(i) for i in ids])

        return self.as_user(user_id, run)

    def state(self, reconciliation_id: int) -> dict:
        def read():
            Reconciliation = Pool().get('prepaid.vendor.reconciliation')
            record = Reconciliation(reconciliation_id)
            return {
                'state': record.state,
                'lines': sorted(
                    (ln.id, ln.cls, ln.receipt, ln.state) for ln in record.lines
                ),
            }

        return committed(read)

    def every_class_file(self) -> tuple[bytes, dict]:
        """Five sales and a vendor file with an item of every class"""
        a = self.sell('100.00')  # matched, then counted twice
        b = self.sell('120.00')  # the vendor says 125.00
        c = self.sell('130.00')  # not in the vendor's file
        d = self.sell('140.00')  # the utility reversed it, the vendor did not
        e = self.sell('150.00')  # the vendor dates it next month
        self.cancel(d)
        month = self.month()
        next_month = (month + dt.timedelta(days=32)).replace(day=1)
        e_at = dt.datetime.combine(next_month, dt.time(0, 30), dt.UTC)

        def row(sale, amount=None, at=None, **keys):
            at = at or sale['at']
            values = {
                'msg_id': sale['msg_id'],
                'receipt': sale['receipt'],
                'token': sale['token'],
            }
            values.update(keys)
            return (
                f'{at.isoformat()},{amount or sale["amount"]},{values["msg_id"]},'
                f'{values["receipt"]},{values["token"]},sale\r\n'
            )

        data = (
            HEADER
            + row(a)
            + row(b, amount='125.00')
            + row(d)
            + row(e, at=e_at)
            + row(a)  # a duplicate
            + row(a, msg_id='', receipt='OTHER-1', token='')  # vendor only
        )
        return data.encode(), {'a': a, 'b': b, 'c': c, 'd': d, 'e': e}

    # -- tests ----------------------------------------------------------------
    def test_every_class_and_matching_again(self):
        "A line of each class; a second match replaces them; Close when none is open"
        data, sales = self.every_class_file()
        record = self.new_reconciliation(data)
        accountant = self.user('acc', 'accountant')
        self.press(accountant, 'prepaid.vendor.reconciliation', 'match', [record])
        first = self.state(record)
        self.assertEqual(first['state'], 'matched')
        self.assertEqual({cls for _, cls, _, _ in first['lines']}, CLASSES)
        by_receipt = {receipt: cls for _, cls, receipt, _ in first['lines']}
        self.assertEqual(by_receipt[sales['b']['receipt']], 'amount_mismatch')
        self.assertEqual(by_receipt[sales['c']['receipt']], 'utility_only')
        self.assertEqual(by_receipt[sales['d']['receipt']], 'reversed')
        self.assertEqual(by_receipt[sales['e']['receipt']], 'cut_off')
        self.assertEqual(by_receipt['OTHER-1'], 'vendor_only')
        self.assertEqual(len(first['lines']), 7)

        def amounts():
            Line = Pool().get('prepaid.vendor.reconciliation.line')
            (line,) = Line.search(
                [('reconciliation', '=', record), ('cls', '=', 'amount_mismatch')]
            )
            return (
                line.utility_amount,
                line.vendor_amount,
                line.difference,
                line.age_bucket,
                line.token,
            )

        utility, vendor, difference, bucket, token = committed(amounts)
        self.assertEqual((utility, vendor, difference), (D('120'), D('125'), D('5')))
        self.assertEqual(bucket, '0-7 days')
        self.assertEqual(token, '*' * 16 + sales['b']['token'][-4:])

        # Matched again: the same lines, made anew, none twice.
        self.press(accountant, 'prepaid.vendor.reconciliation', 'match', [record])
        second = self.state(record)
        self.assertEqual(
            sorted(x[1:] for x in second['lines']),
            sorted(x[1:] for x in first['lines']),
        )
        self.assertFalse(
            {x[0] for x in first['lines']} & {x[0] for x in second['lines']}
        )

        # Open items left: Close refuses.
        with self.assertRaisesRegex(UserError, 'still has open disputes'):
            self.press(accountant, 'prepaid.vendor.reconciliation', 'close', [record])
        self.assertEqual(self.state(record), second)

    def test_bad_files_refused_nothing_changed(self):
        "A file the core refuses, or a bad row: a clear error, the lines kept"
        a = self.sell('100.00')
        good = HEADER + sale_row(a)
        record = self.new_reconciliation(good.encode())
        accountant = self.user('acc', 'accountant')
        self.press(accountant, 'prepaid.vendor.reconciliation', 'match', [record])
        before = self.state(record)
        self.assertEqual([x[1] for x in before['lines']], ['matched'])

        bad_row = good + f'{a["at"].isoformat()},12,34,56.78,,,sale\r\n'
        for data, text in [
            (b'amount;receipt\r\n1;2\r\n', 'cannot be used'),
            (b'\x00\x01garbage', 'cannot be used'),
            (bad_row.encode(), 'rows in error'),
        ]:
            with self.subTest(text=text):

                def upload_and_match(data=data):
                    Reconciliation = Pool().get('prepaid.vendor.reconciliation')
                    records = [Reconciliation(record)]
                    Reconciliation.write(records, {'file': data})
                    Reconciliation.match(records)

                with self.assertRaises(UserError) as caught:
                    self.as_user(accountant, upload_and_match)
                self.assertIn(text, caught.exception.message)
                self.assertIn(
                    'Nothing was changed'.lower(), caught.exception.message.lower()
                )
                self.assertEqual(self.state(record), before)

    def test_dispute_adjusted_by_the_accountant_only(self):
        """Evidence by the Vendor Manager; the agreed amount and its posting
        by the accountant only: one posted move, the float moved by it"""
        a = self.sell('100.00')
        self.sell('130.00')  # utility only: the vendor's file misses it
        data = (HEADER + sale_row(a)).encode()
        record = self.new_reconciliation(data)
        accountant = self.user('acc', 'accountant')
        manager = self.user('vm', 'prepaid_vendor_portal.group_vendor_manager')
        cashier = self.user('ca', 'cashier')
        Line = 'prepaid.vendor.reconciliation.line'
        # Match: the accountant's, not the Vendor Manager's nor a cashier's.
        for refused in (manager, cashier):
            with self.assertRaises(REFUSED):
                self.press(refused, 'prepaid.vendor.reconciliation', 'match', [record])
        self.press(accountant, 'prepaid.vendor.reconciliation', 'match', [record])
        (line,) = [x[0] for x in self.state(record)['lines'] if x[1] == 'utility_only']

        def write(values):
            def run():
                Model = Pool().get(Line)
                Model.write([Model(line)], values)

            return run

        # The Vendor Manager gathers the evidence; a cashier cannot.
        evidence = {
            'evidence': 'The till crashed; the vendor sold it (slip 7781).',
            'evidence_file': b'%PDF-1.4 slip',
            'evidence_file_name': 'slip.pdf',
        }
        with self.assertRaises(REFUSED):
            self.as_user(cashier, write(evidence))
        with self.assertRaisesRegex(UserError, 'enter the evidence'):
            self.press(manager, Line, 'submit_evidence', [line])
        self.as_user(manager, write(evidence))
        # Nor may anyone rewrite what Match found.
        with self.assertRaises(REFUSED):
            self.as_user(manager, write({'utility_amount': D(0)}))
        self.press(manager, Line, 'submit_evidence', [line])
        # The agreed amount and the adjustment: not the Vendor Manager's.
        with self.assertRaises(REFUSED):
            self.as_user(manager, write({'agreed_amount': D('130.00')}))
        self.as_user(accountant, write({'agreed_amount': D('-130.00')}))
        for refused in (manager, cashier):
            with self.assertRaises(REFUSED):
                self.press(refused, Line, 'adjust', [line])

        def figures():
            pool = Pool()
            Vendor = pool.get('prepaid.vendor')
            Position = pool.get('prepaid.vendor.float')
            vendor = Vendor(self.seller.vendor)
            return (
                Position.ledger_balances([vendor])[vendor.id],
                Position.drift([vendor])[vendor.id],
                Position.positions([vendor])[vendor.id].available,
            )

        ledger, drift, available = committed(figures)
        self.press(accountant, Line, 'adjust', [line])

        def move():
            record = Pool().get(Line)(line)
            return (
                record.state,
                record.move.state,
                str(record.move.origin),
                sorted(
                    (ln.account.id, ln.debit, ln.credit, bool(ln.party))
                    for ln in record.move.lines
                ),
                record.reconciliation.vendor.float_account.id,
            )

        state, move_state, origin, lines, float_account = committed(move)
        self.assertEqual((state, move_state), ('adjusted', 'posted'))
        self.assertEqual(origin, f'{Line},{line}')
        # The vendor owes the sale it left out: Dr float / Cr difference.
        self.assertEqual(
            lines,
            sorted(
                [
                    (float_account, D('130.00'), D(0), True),
                    (self.difference_account, D(0), D('130.00'), False),
                ]
            ),
        )
        after = committed(figures)
        self.assertEqual(after[0], ledger - D('130.00'))
        self.assertEqual(after[1], drift)  # the position moved with the ledger
        self.assertEqual(after[2], available - D('130.00'))

        # Pressed again (its button is gone): refused, no second move;
        # matching again is refused too.
        with self.assertRaises(REFUSED):
            self.press(accountant, Line, 'adjust', [line])
        self.assertEqual(committed(figures), after)
        with self.assertRaisesRegex(UserError, 'dispute on one of its lines'):
            self.press(accountant, 'prepaid.vendor.reconciliation', 'match', [record])

        with self.assertRaises(REFUSED):
            self.press(manager, Line, 'close', [line])
        self.press(accountant, Line, 'close', [line])
        self.press(accountant, 'prepaid.vendor.reconciliation', 'close', [record])
        self.assertEqual(self.state(record)['state'], 'closed')

    def test_adjust_over_json_rpc(self):
        "Post Adjustment over JSON-RPC: the Vendor Manager refused, the accountant not"
        self.sell('130.00')  # utility only
        a = self.sell('100.00')
        record = self.new_reconciliation((HEADER + sale_row(a)).encode())

        def dispute():
            pool = Pool()
            Reconciliation = pool.get('prepaid.vendor.reconciliation')
            Line = pool.get('prepaid.vendor.reconciliation.line')
            User = pool.get('res.user')
            Reconciliation.match([Reconciliation(record)])
            (line,) = Line.search(
                [('reconciliation', '=', record), ('cls', '=', 'utility_only')]
            )
            Line.write(
                [line],
                {
                    'evidence': 'slip 7782',
                    'evidence_file': b'slip',
                    'evidence_file_name': 'slip.txt',
                },
            )
            Line.submit_evidence([line])
            Line.write([line], {'agreed_amount': D('-130.00')})
            logins = {}
            for role, group in [
                ('vm', 'prepaid_vendor_portal.group_vendor_manager'),
                ('acc', 'accountant'),
            ]:
                user = create_user(f'rpc_{role}_{record}', group)
                User.write([user], {'password': PASSWORD})
                logins[role] = user.login
            return line.id, logins

        line, logins = committed(dispute, context={'company': self.env.company})

        def line_state():
            record_ = Pool().get('prepaid.vendor.reconciliation.line')(line)
            return record_.state, record_.move.id if record_.move else None

        method = 'model.prepaid.vendor.reconciliation.line.adjust'
        manager = JsonRpc(self.client)
        manager.login(logins['vm'])
        answer = manager(method, [line], {})
        self.assertIn('error', answer)
        self.assertNotIn('result', answer)
        self.assertEqual(committed(line_state), ('evidence', None))
        # Nor may the manager write the agreed amount over RPC.
        answer = manager(
            'model.prepaid.vendor.reconciliation.line.write',
            [line],
            {'agreed_amount': D('1.00')},
            {},
        )
        self.assertIn('error', answer)

        accountant = JsonRpc(self.client)
        accountant.login(logins['acc'])
        answer = accountant(method, [line], {})
        self.assertNotIn('error', answer)
        state, move = committed(line_state)
        self.assertEqual(state, 'adjusted')
        self.assertIsNotNone(move)
