"""Operators over XMLVend and the request log, on the trytond route: a
terminal that requires an operator (its API token in the X-XMLVend-Token
header, the operator's opName and password in authCred), the lock-out,
the login operation, the operator on the stored answer; every exchange in
``prepaid.vendor.xmlvend.log``, redacted, faults included."""

from __future__ import annotations

import datetime as dt
import unittest
from decimal import Decimal

import pytest
from trytond import config
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending.tests.staff import acting_as, create_user
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.pool import Pool
from trytond.transaction import Transaction

from .vendor_fixtures import PASSWORD, TOKEN
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
    read_state,
)

pytestmark = pytest.mark.database
ALICE = x.AuthCred(op_name='alice', password=PASSWORD)


class XMLVendOperatorTestCase(XMLVendRouteMixin, unittest.TestCase):
    "Operator log-in and the request log"

    def staffed_seller(self, float_='500.00'):
        "A vendor whose terminal requires an operator (alice, PASSWORD)"
        seller = self.new_seller(float_)

        def require():
            pool = Pool()
            Terminal = pool.get('prepaid.vendor.terminal')
            Operator = pool.get('prepaid.vendor.operator')
            Terminal.write([Terminal(seller.terminal)], {'operator_required': True})
            (alice,) = Operator.search([('vendor', '=', seller.vendor)])
            return alice.id

        seller.operator = committed(require)
        return seller

    def post_with_token(self, message: x.BaseReq, token: str | None = TOKEN):
        headers = {'Content-Type': CONTENT_TYPES['1.1']}
        if token is not None:
            headers['X-XMLVend-Token'] = token
        reply = self.client.post(
            URL, data=envelope(message), headers=headers, environ_base=ADDRESS
        )
        return reply.status_code, x.read_response(reply.data)

    def login(self, seller, cred=ALICE, token=TOKEN):
        return self.post_with_token(
            x.LoginReq(**header(seller, auth_cred=cred)), token=token
        )

    def operator_state(self, seller):
        def read():
            Operator = Pool().get('prepaid.vendor.operator')
            operator = Operator(seller.operator)
            return operator.failed_attempts, operator.locked

        return committed(read)

    def log_rows(self, **where):
        def read():
            Log = Pool().get('prepaid.vendor.xmlvend.log')
            domain = [(k, '=', v) for k, v in where.items()]
            return [
                {
                    name: getattr(row, name)
                    for name in (
                        'operation',
                        'msg_id',
                        'client_id',
                        'outcome',
                        'fault',
                        'fault_desc',
                        'request',
                        'response',
                        'status',
                        'truncated',
                    )
                }
                | {
                    'terminal': row.terminal.id if row.terminal else None,
                    'operator': row.operator.id if row.operator else None,
                }
                for row in Log.search(domain, order=[('id', 'ASC')])
            ]

        return committed(read)

    # -- operators -----------------------------------------------------------
    def test_login(self):
        "alice logs in: her id, the terminal, the vendor's credit, the limits"
        seller = self.staffed_seller()
        status, user = self.login(seller)
        self.assertEqual(status, 200, user)
        self.assertIsInstance(user, x.LoginUser)
        self.assertEqual(
            (user.id, user.tid, user.cdu_id),
            (seller.operator, seller.terminal, seller.vendor),
        )
        self.assertEqual(user.cdu_balance, read_state(seller)['available'])
        self.assertEqual(user.cdu_balance, Decimal('500.00'))
        (row,) = self.log_rows(terminal=seller.terminal)
        self.assertEqual(
            (row['operation'], row['outcome'], row['operator']),
            ('LoginRequest', 'answered', seller.operator),
        )
        self.assertNotIn(PASSWORD, row['request'])

    def test_operator_terminal_needs_header_token(self):
        "On an operator terminal the API token in authCred is refused"
        seller = self.staffed_seller()
        status, answer = self.login(
            seller, cred=x.AuthCred(op_name='alice', password=TOKEN), token=None
        )
        self.assertFault(answer, 'ClientIDAuthorisationEx', 'wrong API token')
        status, answer = self.login(seller, token='w' * 40)
        self.assertFault(answer, 'ClientIDAuthorisationEx', 'wrong API token')
        # A bad terminal credential says nothing about the operator.
        self.assertEqual(self.operator_state(seller), (0, False))

    def test_wrong_password_and_unknown_operator(self):
        "One message for both; only a known operator's count goes up"
        seller = self.staffed_seller()
        status, wrong = self.login(seller, x.AuthCred(op_name='alice', password='no'))
        self.assertEqual(status, 500)
        self.assertFault(
            wrong, 'RequestAuthorisationEx', 'Unknown operator or wrong password'
        )
        status, unknown = self.login(seller, x.AuthCred(op_name='bob', password='no'))
        self.assertFault(
            unknown, 'RequestAuthorisationEx', 'Unknown operator or wrong password'
        )
        self.assertEqual(wrong.reason, unknown.reason)
        # The count outlived the fault's rollback.
        self.assertEqual(self.operator_state(seller), (1, False))
        # No credentials at all: refused too.
        status, none = self.login(seller, cred=None)
        self.assertFault(none, 'RequestAuthorisationEx', 'requires an operator')
        # A success resets the count.
        status, user = self.login(seller)
        self.assertIsInstance(user, x.LoginUser)
        self.assertEqual(self.operator_state(seller), (0, False))

    def test_lock_out_after_five_and_unlock(self):
        "Five wrong passwords lock alice; a manager unlocks her"
        seller = self.staffed_seller()
        guess = x.AuthCred(op_name='alice', password='guess')
        for _ in range(4):
            self.login(seller, guess)
        self.assertEqual(self.operator_state(seller), (4, False))
        self.login(seller, guess)
        self.assertEqual(self.operator_state(seller), (5, True))
        # Locked: even her right password is refused, and so is a sale.
        status, answer = self.login(seller)
        self.assertFault(answer, 'RequestAuthorisationEx', 'locked')
        before = read_state(seller)
        status, answer = self.post_with_token(
            credit_vend(seller, self.env.meter, '50.00', auth_cred=ALICE)
        )
        self.assertFault(answer, 'RequestAuthorisationEx', 'locked')
        self.assertEqual(read_state(seller), before)

        def unlock():
            pool = Pool()
            Operator = pool.get('prepaid.vendor.operator')
            Data = pool.get('ir.model.data')
            operator = Operator(seller.operator)
            company = operator.company
            manager = create_user(
                f'vm_{seller.operator}',
                Data.get_id('prepaid_vendor_portal', 'group_vendor_manager'),
                company=company,
            )
            with acting_as(manager, company=company.id, companies=[company.id]):
                Operator.unlock([operator])

        committed(unlock)
        self.assertEqual(self.operator_state(seller), (0, False))
        status, user = self.login(seller)
        self.assertIsInstance(user, x.LoginUser)

    def test_sale_records_operator(self):
        "A sale by alice: her on the stored answer and on the log row"
        seller = self.staffed_seller()
        status, answer = self.post_with_token(
            credit_vend(seller, self.env.meter, '100.00', auth_cred=ALICE)
        )
        self.assertEqual(status, 200, answer)
        self.assertIsInstance(answer, x.CreditVendResp)

        def read():
            Answer = Pool().get('prepaid.vendor.xmlvend.answer')
            (stored,) = Answer.search([('terminal', '=', seller.terminal)])
            return stored.operator.id, stored.vend is not None

        self.assertEqual(committed(read), (seller.operator, True))
        (row,) = self.log_rows(terminal=seller.terminal)
        self.assertEqual(row['operator'], seller.operator)
        self.assertEqual(row['outcome'], 'answered')
        token = answer.credit_vend_receipt.transactions.tx[
            0
        ].credit_token_issue.token.sts_cipher
        self.assertIn(token, row['response'])  # credit tokens stay, for disputes

    def test_operator_limits(self):
        "alice's own maximum bounds her login's range and her sales"
        seller = self.staffed_seller()

        def limit():
            Operator = Pool().get('prepaid.vendor.operator')
            Operator.write([Operator(seller.operator)], {'max_amount': Decimal(100)})

        committed(limit)
        status, user = self.login(seller)
        self.assertEqual(user.max_vend_amt, Decimal(100))
        before = read_state(seller)
        status, answer = self.post_with_token(
            credit_vend(seller, self.env.meter, '150.00', auth_cred=ALICE)
        )
        self.assertFault(answer, 'RequestAuthorisationEx', 'alice')
        self.assertEqual(read_state(seller), before)
        status, answer = self.post_with_token(
            credit_vend(seller, self.env.meter, '100.00', auth_cred=ALICE)
        )
        self.assertIsInstance(answer, x.CreditVendResp)

    def test_service_terminal_has_no_login(self):
        "A service terminal: no operator checked, no login to make"
        seller = self.new_seller()
        status, answer = self.post_with_token(x.LoginReq(**header(seller)), token=None)
        self.assertFault(answer, 'UseCaseSupportEx', 'no operators')
        # The token in the header works on a service terminal too.
        status, answer = self.post_with_token(
            x.ConfirmMeterReq(
                **header(seller, auth_cred=x.AuthCred(op_name='anyone')),
                id_method=by_msno(self.env.meter),
            )
        )
        self.assertEqual(status, 200, answer)

    # -- the request log -----------------------------------------------------
    def test_wrong_token_logged_redacted(self):
        "A wrong API token: the row has the fault, never the token"
        seller = self.new_seller()
        wrong = 'w' * 40
        request = credit_vend(seller, self.env.meter, '50.00', **header(seller, wrong))
        status, answer = self.post(request)
        self.assertFault(answer, 'ClientIDAuthorisationEx')
        rows = self.log_rows(msg_id=request.msg_id.key)
        self.assertEqual(len(rows), 1)
        (row,) = rows
        self.assertEqual(
            (row['operation'], row['outcome'], row['fault'], row['terminal']),
            ('CreditVendRequest', 'fault', 'ClientIDAuthorisationEx', None),
        )
        self.assertEqual(row['client_id'], request.client_id.key)
        self.assertEqual(row['status'], 500)
        self.assertNotIn(wrong, row['request'])
        self.assertIn('****', row['request'])
        self.assertIn(self.env.meter, row['request'])
        self.assertIn('wrong API token', row['response'])

    def test_faulted_sale_leaves_its_row(self):
        "A sale refused after the float's draw: rolled back, its row stays"
        seller = self.new_seller()
        before = read_state(seller)
        # Below the utility's minimum tender: Vend.vend refuses after the draw.
        request = credit_vend(seller, self.env.meter, '5.00')
        status, answer = self.post(request)
        self.assertFault(answer, 'RequestAuthorisationEx', '5.00')
        self.assertEqual(read_state(seller), before)
        (row,) = self.log_rows(msg_id=request.msg_id.key)
        self.assertEqual(
            (row['outcome'], row['fault'], row['terminal']),
            ('fault', 'RequestAuthorisationEx', seller.terminal),
        )
        self.assertIn('5.00', row['fault_desc'])
        self.assertNotIn(TOKEN, row['request'])
        # Unreadable bodies are logged too, by size only.
        self.client.post(
            URL,
            data=b'<soap:Envelope',
            headers={'Content-Type': CONTENT_TYPES['1.1']},
            environ_base=ADDRESS,
        )

        def last():
            Log = Pool().get('prepaid.vendor.xmlvend.log')
            (row,) = Log.search([], order=[('id', 'DESC')], limit=1)
            return row.outcome, row.fault, row.client_id, row.request

        outcome, fault, client_id, body = committed(last)
        self.assertEqual((outcome, fault, client_id), ('fault', 'soap:Client', None))
        self.assertIn('not stored', body)

    def test_body_cap(self):
        "A body longer than the log keeps is cut and marked"
        seller = self.new_seller()
        had_section = config.has_section('prepaid_vendor_portal')
        if not had_section:
            config.add_section('prepaid_vendor_portal')
        config.set('prepaid_vendor_portal', 'xmlvend_log_max_body', '200')
        try:
            request = credit_vend(seller, self.env.meter, '50.00')
            self.post(request)
        finally:
            if had_section:
                config._config.remove_option(
                    'prepaid_vendor_portal', 'xmlvend_log_max_body'
                )
            else:
                config.remove_section('prepaid_vendor_portal')
            config._cache_clear()  # remove_* leave get's cache
        (row,) = self.log_rows(msg_id=request.msg_id.key)
        self.assertTrue(row['truncated'])
        self.assertEqual(len(row['request']), 200)

    def test_log_append_only_access_and_purge(self):
        """Nobody edits a row; a cashier reads none; the purge deletes rows
        past the retention only"""
        seller = self.new_seller()
        request = credit_vend(seller, self.env.meter, '50.00')
        self.post(request)

        def check():
            pool = Pool()
            Log = pool.get('prepaid.vendor.xmlvend.log')
            Data = pool.get('ir.model.data')
            (row,) = Log.search([('msg_id', '=', request.msg_id.key)])
            company = pool.get('company.company')(self.env.company)
            cashier = create_user(f'ca_{row.id}', 'cashier', company=company)
            with acting_as(cashier, company=company.id, companies=[company.id]):
                with self.assertRaises(AccessError):
                    Log.search([])
                with self.assertRaises(AccessError):
                    Log.write([Log(row.id)], {'fault': 'x'})
            accountant = create_user(f'ac_{row.id}', 'accountant', company=company)
            with acting_as(accountant, company=company.id, companies=[company.id]):
                self.assertTrue(Log.search([('id', '=', row.id)]))
                with self.assertRaises(AccessError):
                    Log.write([Log(row.id)], {'fault': 'x'})
                with self.assertRaises(AccessError):
                    Log.delete([Log(row.id)])
            admin = create_user(
                f'ad_{row.id}', Data.get_id('prepaid_vending', 'group_admin')
            )
            with acting_as(admin):
                with self.assertRaises(AccessError):
                    Log.delete([Log(row.id)])
            return row.id

        row_id = committed(check)

        def age_and_purge():
            Log = Pool().get('prepaid.vendor.xmlvend.log')
            table = Log.__table__()
            cursor = Transaction().connection.cursor()
            old = dt.datetime.now() - dt.timedelta(days=401)
            cursor.execute(
                *table.update([table.received], [old], where=table.id == row_id)
            )
            kept = Log.search_count([('id', '!=', row_id)])
            deleted = Log.purge()
            return (
                deleted,
                Log.search_count([('id', '=', row_id)]),
                kept,
                Log.search_count([]),
            )

        deleted, left, kept, now = committed(age_and_purge)
        self.assertGreaterEqual(deleted, 1)
        self.assertEqual(left, 0)
        self.assertEqual(now, kept)
