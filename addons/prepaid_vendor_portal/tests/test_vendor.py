"""Vendors in Tryton: lifecycle, the limits chain a sale is decided on (and
the XMLVend fault of each refusal), credentials, the float (top-ups as
posted moves, draws never below the floor) and who may do what."""

from __future__ import annotations

import datetime as dt
import unittest
from decimal import Decimal as D

from trytond import backend
from trytond.model.exceptions import AccessError, ValidationError
from trytond.modules.company.tests import create_company, set_company
from trytond.modules.prepaid_vending.tests.staff import acting_as, create_user
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.modules.prepaid_vendor_portal import limits
from trytond.modules.prepaid_vendor_portal.xmlvend import faults
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .vendor_fixtures import PASSWORD, TOKEN, create_vendor, setup_books

NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)

#: On PostgreSQL a draw runs on its own connection and sees committed rows
#: only, not this test's uncommitted vendor: test_float_concurrency.py tests
#: draws there, with committed vendors.
OUT_OF_BAND = 'the draw sees committed vendors only (test_float_concurrency.py)'


def decide(env, amount, operator=True, at=NOON, address='10.1.2.3'):
    "limits.check for a sale of amount at env's terminal (by its operator)"
    vendor = env.vendor.__class__(env.vendor.id)
    terminal = env.terminal.__class__(env.terminal.id)
    chain = terminal.limits_chain(
        env.operator.__class__(env.operator.id) if operator else None
    )
    request = limits.VendRequest(limits.Kind.VEND, amount, at, address)
    return limits.check(chain, vendor.float_state(), request, vendor.timezone())


class VendorTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vendor_portal')

    @with_company
    def test_lifecycle(self):
        "draft > active > suspended > active > terminated, and no way back"
        Vendor = Pool().get('prepaid.vendor')
        env = create_vendor(active=False)
        vendor = env.vendor
        self.assertEqual(vendor.state, 'draft')
        Vendor.suspend([vendor])  # not from draft
        self.assertEqual(vendor.state, 'draft')
        Vendor.activate([vendor])
        Vendor.suspend([vendor])
        self.assertEqual(vendor.state, 'suspended')
        Vendor.activate([vendor])
        self.assertEqual(vendor.state, 'active')
        self.assertIsNone(vendor.cut_off)
        Vendor.terminate([vendor])
        self.assertEqual(vendor.state, 'terminated')
        self.assertIsNotNone(vendor.cut_off)  # liability ends now
        Vendor.activate([vendor])
        self.assertEqual(Vendor(vendor.id).state, 'terminated')
        with self.assertRaises(ValidationError):  # and its float is closed
            vendor_float().top_up(vendor, D('10.00'), None, dt.date.today(), 'x')

    @with_company
    def test_limits_chain_faults(self):
        "Each refusal of the chain built from the records, with its fault"
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Outlet = pool.get('prepaid.vendor.outlet')
        Terminal = pool.get('prepaid.vendor.terminal')
        Operator = pool.get('prepaid.vendor.operator')
        acc = setup_books()
        env = create_vendor(acc)
        vendor_float().top_up(env.vendor, D('500.00'), acc.cash, NOON.date(), 'dep')
        chain = Terminal(env.terminal.id).limits_chain(Operator(env.operator.id))
        self.assertEqual(
            [n.level for n in chain],
            [limits.Level.VENDOR, limits.Level.OUTLET, limits.Level.TERMINAL,
             limits.Level.OPERATOR],
        )  # fmt: skip
        self.assertIsNone(decide(env, D('500.00')))  # the whole float, to the cent

        def refused(amount=D('50.00'), **kw):
            refusal = decide(env, amount, **kw)
            self.assertIsNotNone(refusal)
            return refusal.fault, refusal.reason

        self.assertEqual(refused(D('500.01')), (faults.VendorCreditEx, 'float'))
        Outlet.write([env.outlet], {'max_amount': D('40.00')})
        self.assertEqual(refused(), (faults.RequestAuthorisationEx, 'max_amount'))
        Outlet.write([env.outlet], {'max_amount': None})
        Terminal.write([env.terminal], {'allowed_networks': '192.0.2.0/24'})
        self.assertEqual(refused(), (faults.ClientIDAuthorisationEx, 'address'))
        self.assertIsNone(decide(env, D('50.00'), address='192.0.2.9'))
        Terminal.write([env.terminal], {'allowed_networks': None})
        Operator.write([env.operator], {'selling_hours': 'Mon-Fri 13:00-17:00'})
        self.assertEqual(refused(), (faults.RequestAuthorisationEx, 'hours'))
        Operator.write([env.operator], {'selling_hours': None})
        Terminal.revoke([env.terminal])
        self.assertEqual(refused(), (faults.ClientIDAuthorisationEx, 'revoked'))
        Terminal.write([env.terminal], {'api_token': TOKEN})  # a new token
        self.assertIsNone(decide(env, D('50.00')))
        Vendor.suspend([env.vendor])
        self.assertEqual(
            refused(), (faults.ClientIDAuthorisationEx, 'vendor_suspended')
        )
        Vendor.activate([env.vendor])
        Vendor.write([env.vendor], {'cut_off': dt.datetime(2026, 3, 2, 11, 0)})
        self.assertEqual(refused(), (faults.ClientIDAuthorisationEx, 'cut_off'))
        Vendor.write([env.vendor], {'cut_off': None})
        # A sub-agent sells only while its whole agent network may.
        agent = create_vendor(acc, code='AG', party_name='Agent One')
        Vendor.write([agent.vendor], {'parent': env.vendor.id, 'kind': 'agent'})
        vendor_float().top_up(agent.vendor, D('100.00'), acc.cash, NOON.date(), 'd')
        self.assertIsNone(decide(agent, D('50.00')))
        Vendor.suspend([env.vendor])
        refusal = decide(agent, D('50.00'))
        self.assertEqual(
            (refusal.fault, refusal.level),
            (faults.ClientIDAuthorisationEx, limits.Level.OWNER),
        )
        with self.assertRaises(ValidationError):  # an agent is not its own parent
            Vendor.write([env.vendor], {'parent': agent.vendor.id})
        # Last: a refused write is rolled back by the request, not by a test.
        with self.assertRaises(ValidationError):  # limits the decision cannot read
            Outlet.write([env.outlet], {'selling_hours': '8 to 5'})
        with self.assertRaises(ValidationError):
            Terminal.write([env.terminal], {'min_amount': D(50), 'max_amount': D(10)})
        with self.assertRaises(ValidationError):  # another vendor's operator
            Terminal(env.terminal.id).limits_chain(Operator(agent.operator.id))

    @with_company
    def test_credentials(self):
        "Token, certificate, password: hashed, checked, locked out"
        pool = Pool()
        Terminal = pool.get('prepaid.vendor.terminal')
        Operator = pool.get('prepaid.vendor.operator')
        env = create_vendor()
        terminal = Terminal(env.terminal.id)
        self.assertNotIn(TOKEN, terminal.token_hash)
        self.assertTrue(terminal.check_token(TOKEN))
        self.assertFalse(terminal.check_token(TOKEN[:-1] + 'x'))
        self.assertFalse(terminal.check_token(None))
        with self.assertRaises(ValidationError):
            Terminal.write([terminal], {'api_token': 'short'})
        fingerprint = 'AB:' * 31 + 'AB'
        Terminal.write([terminal], {'cert_fingerprint': fingerprint})
        self.assertEqual(Terminal(terminal.id).cert_fingerprint, 'ab' * 32)
        self.assertTrue(terminal.check_token(TOKEN, 'ab' * 32))
        self.assertFalse(terminal.check_token(TOKEN, 'cd' * 32))
        self.assertFalse(terminal.check_token(TOKEN))  # certificate required
        Terminal.revoke([terminal])
        self.assertFalse(terminal.check_token(TOKEN, 'ab' * 32))
        Terminal.write([terminal], {'api_token': TOKEN})  # a new token restores it
        self.assertTrue(terminal.check_token(TOKEN, 'ab' * 32))

        operator = Operator(env.operator.id)
        self.assertNotIn(PASSWORD, operator.password_hash)
        self.assertTrue(operator.check_password(PASSWORD))
        for _ in range(4):
            self.assertFalse(operator.check_password('guess'))
        self.assertTrue(operator.check_password(PASSWORD))  # resets the count
        self.assertEqual(Operator(operator.id).failed_attempts, 0)
        for _ in range(5):
            operator.check_password('guess')
        self.assertTrue(Operator(operator.id).locked)
        self.assertFalse(operator.check_password(PASSWORD))  # locked out
        refusal = decide(env, D('1.00'))
        self.assertEqual(
            (refusal.fault, refusal.level),
            (faults.RequestAuthorisationEx, limits.Level.OPERATOR),
        )
        Operator.unlock([operator])
        self.assertTrue(operator.check_password(PASSWORD))
        # Last: a refused write is rolled back by the request, not by a test.
        with self.assertRaises(ValidationError):
            Terminal.write([terminal], {'cert_fingerprint': 'not-a-fingerprint'})

    @unittest.skipIf(backend.name == 'postgresql', OUT_OF_BAND)
    @with_company
    def test_top_up_and_draws(self):
        "A top-up is a posted move; draws never pass the floor"
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Position = vendor_float()
        acc = setup_books()
        env = create_vendor(acc, credit_line=D('100.00'))
        vendor = env.vendor
        self.assertEqual(Vendor(vendor.id).float_balance, D(0))
        self.assertEqual(Vendor(vendor.id).float_available, D('100.00'))
        # The Top Up button: the accountant's, not the Vendor Manager's.
        for group in ('prepaid_vendor_portal.group_vendor_manager', 'cashier'):
            with self.subTest(group=group), acting_as(create_user(f'u_{group}', group)):
                with self.assertRaises(AccessError):
                    top_up_wizard(vendor, D('10.00'), acc.cash, 'no')
        with acting_as(create_user('acc_v', 'accountant')):
            top_up_wizard(vendor, D('150.00'), acc.cash, 'SLIP 6')
        self.assertEqual(Vendor(vendor.id).float_balance, D('150.00'))
        Position.top_up(vendor, D('100.00'), acc.cash, NOON.date(), 'SLIP 7')
        (move,) = (
            Pool().get('account.move').search([('description', 'like', '%SLIP 7')])
        )
        self.assertEqual(move.state, 'posted')
        self.assertEqual(move.origin, vendor)
        by_account = {
            (ln.account, ln.party): (ln.debit, ln.credit) for ln in move.lines
        }
        self.assertEqual(by_account[(acc.payable, env.party)], (D(0), D('100.00')))
        self.assertEqual(by_account[(acc.cash, None)], (D('100.00'), D(0)))
        vendor = Vendor(vendor.id)
        self.assertEqual(vendor.float_balance, D('250.00'))
        self.assertEqual(vendor.float_available, D('350.00'))
        self.assertEqual(Position.drift([vendor]), {vendor.id: D(0)})
        with self.assertRaises(ValidationError):
            Position.top_up(vendor, D('-5.00'), acc.cash, NOON.date(), 'x')

        self.assertEqual(Position.draw(vendor.id, D('300.00')), D('50.00'))
        before = Position.positions([vendor])[vendor.id]
        self.assertIsNone(Position.draw(vendor.id, D('50.01')))  # below the floor
        self.assertEqual(Position.positions([vendor])[vendor.id], before)  # unchanged
        self.assertEqual(Position.draw(vendor.id, D('50.00')), D(0))  # to the floor
        self.assertEqual(decide(env, D('0.01')).fault, faults.VendorCreditEx)
        Position.release(vendor.id, D('50.00'))  # a reversal before booking
        self.assertEqual(Vendor(vendor.id).float_available, D('50.00'))
        Vendor.write([vendor], {'credit_line': D('150.00')})
        self.assertEqual(Vendor(vendor.id).float_available, D('100.00'))
        Position.book(vendor.id, D('300.00'))  # the sale's move, when booked
        self.assertEqual(Vendor(vendor.id).float_available, D('100.00'))
        with self.assertRaises(ValueError):
            Position.draw(vendor.id, D('-1.00'))

    @unittest.skipIf(backend.name == 'postgresql', OUT_OF_BAND)
    @with_company
    def test_float_reservations(self):
        """A draw leaves a sold reservation; a refusal nothing; the sweeper
        settles what a crash left held, by age and by the sale's mark; a
        booking leaves available and drift alone"""
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Reservation = pool.get('prepaid.vendor.float.reservation')
        Sold = pool.get('prepaid.vendor.float.sold')
        Counter = pool.get('prepaid.vendor.float.counter')
        Position = vendor_float()
        acc = setup_books()
        env = create_vendor(acc)
        vendor = env.vendor
        Position.top_up(vendor, D('100.00'), acc.cash, NOON.date(), 'dep')
        self.assertEqual(Position.draw(vendor.id, D('40.00'), 'V1'), D('60.00'))
        (drawn,) = Reservation.search([('vendor', '=', vendor.id)])
        self.assertEqual(
            (drawn.amount, drawn.reference, drawn.state), (D('40.00'), 'V1', 'sold')
        )
        self.assertEqual(len(Sold.search([('reservation', '=', drawn.id)])), 1)
        before = Position.positions([vendor])[vendor.id]
        self.assertIsNone(Position.draw(vendor.id, D('60.01'), 'V2'))  # refused
        self.assertEqual(Position.positions([vendor])[vendor.id], before)
        # Nothing written (other tests' committed reservations aside).
        self.assertEqual(Reservation.search_count([('vendor', '=', vendor.id)]), 1)

        # What a crash leaves on PostgreSQL: held draws, one whose sale
        # committed (its mark), one recent.
        company = vendor.company.id
        old, old_sold, recent = Reservation.create(
            [
                {'vendor': vendor.id, 'company': company, 'amount': D(a),
                 'state': 'held'}
                for a in ('5.00', '7.00', '11.00')
            ]
        )  # fmt: skip
        Sold.create([{'reservation': old_sold.id}])
        (counter,) = Counter.search([('vendor', '=', vendor.id)])
        Counter.write([counter], {'drawn': counter.drawn + D('23.00')})
        table = Reservation.__table__()
        Transaction().connection.cursor().execute(
            *table.update(
                [table.create_date],
                [dt.datetime.now() - dt.timedelta(minutes=16)],
                where=table.id.in_([old.id, old_sold.id]),
            )
        )
        self.assertEqual(Vendor(vendor.id).float_available, D('37.00'))
        self.assertEqual(Reservation.sweep(), (1, 1))
        self.assertEqual(
            [Reservation(r.id).state for r in (old, old_sold, recent, drawn)],
            ['released', 'sold', 'held', 'sold'],
        )
        self.assertEqual(Vendor(vendor.id).float_available, D('42.00'))
        self.assertEqual(Reservation.sweep(), (0, 0))
        self.assertEqual(Reservation.sweep(minutes=0), (0, 1))  # recent, if asked

        # The booking of the sale (its move and the position, together):
        # available and drift do not move.
        move = accounting_move(vendor, acc, D('40.00'))
        self.assertEqual(move.state, 'posted')
        Position.book(vendor.id, D('40.00'))
        vendor = Vendor(vendor.id)
        self.assertEqual(vendor.float_balance, D('60.00'))
        self.assertEqual(vendor.float_available, D('53.00'))
        self.assertEqual(Position.drift([vendor]), {vendor.id: D(0)})
        with self.assertRaises(ValueError):
            Position.release(vendor.id, D('0'))

    @with_transaction()
    def test_access(self):
        "Vendor Manager onboards, a cashier cannot; companies apart; secrets hidden"
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Terminal = pool.get('prepaid.vendor.terminal')
        Party = pool.get('party.party')
        company_a, company_b = create_company('Utility A'), create_company('Utility B')
        with set_company(company_a):
            env = create_vendor()
            cashier = create_user('cashier_v', 'cashier')
            manager = create_user('vm', 'prepaid_vendor_portal.group_vendor_manager')
            operator = create_user('op_v', 'operator')
            party = Party(name='Corner Shop')
            party.save()
            values = {'name': 'Corner Shop', 'code': 'CS', 'party': party.id}
            with acting_as(cashier):
                with self.assertRaises(AccessError):
                    Vendor.create([values])
                with self.assertRaises(AccessError):
                    Terminal.read([env.terminal.id], ['client_id'])
            with acting_as(operator):
                self.assertEqual(len(Vendor.search([])), 1)  # support may look
                with self.assertRaises(AccessError):
                    Terminal.read([env.terminal.id], ['client_id'])
            with acting_as(manager):
                (created,) = Vendor.create([values])
                Vendor.activate([created])
                Vendor.suspend([created])
                self.assertEqual(
                    Terminal.read([env.terminal.id], ['client_id'])[0]['client_id'],
                    '6004708001',
                )
                with self.assertRaises(AccessError):  # not even the digest
                    Terminal.read([env.terminal.id], ['token_hash'])
                terminal = Terminal(env.terminal.id)
                Terminal.write([terminal], {'api_token': 'n' * 40})  # write-only
                Terminal.revoke([terminal])
                # The lifecycle and the credentials' flags move by buttons only.
                for forged in ({'state': 'active'}, {'revoked': False}):
                    with self.assertRaises(AccessError):
                        Terminal.write([terminal], forged)
                Vendor.terminate([created])
                with self.assertRaises(AccessError):
                    Vendor.write([created], {'state': 'active'})
                with self.assertRaises(AccessError):
                    Vendor.create([dict(values, code='CS2', state='active')])
            self.assertTrue(Terminal(env.terminal.id).revoked)
            self.assertFalse(Terminal(env.terminal.id).check_token('n' * 40))
            self.assertEqual(Vendor(created.id).state, 'terminated')
        with set_company(company_b):
            other = create_user('vm_b', 'prepaid_vendor_portal.group_vendor_manager')
            with acting_as(other):
                self.assertEqual(Vendor.search([]), [])
                with self.assertRaises(AccessError):
                    Vendor.read([env.vendor.id], ['name'])


def top_up_wizard(vendor, amount, account, reference):
    "The Top Up wizard as the client drives it, for the current user"
    Wizard = Pool().get('prepaid.vendor.top_up', type='wizard')
    context = {
        'active_model': 'prepaid.vendor',
        'active_id': vendor.id,
        'active_ids': [vendor.id],
    }
    with Transaction().set_context(context):
        session_id, _, _ = Wizard.create()
        start = Wizard.execute(session_id, {}, 'start')
        values = {k: v for k, v in start['view']['defaults'].items() if '.' not in k}
        values.update(
            {'amount': amount, 'counter_account': account.id, 'reference': reference}
        )
        Wizard.execute(session_id, {'start': values}, 'book')
        Wizard.delete(session_id)


def accounting_move(vendor, acc, amount):
    "A sale's booking as a posted move: Dr the float account / Cr cash"
    from trytond.modules.prepaid_vending import accounting

    with Transaction().set_context(company=vendor.company.id):
        (move,) = [
            accounting.adjustment_move(
                NOON.date(),
                'sale',
                [
                    (vendor.float_account, amount, vendor.party, 'sale'),
                    (acc.cash, -amount, None, 'sale'),
                ],
            )
        ]
        accounting.post_adjustments([move], origin=vendor)
    return move


def vendor_float():
    "The float position model, with top_up at hand for the tests"
    from trytond.modules.prepaid_vendor_portal import vendor_float as module

    Position = Pool().get('prepaid.vendor.float')

    class Floats:
        top_up = staticmethod(module.top_up)

        def __getattr__(self, name):
            return getattr(Position, name)

    return Floats()
