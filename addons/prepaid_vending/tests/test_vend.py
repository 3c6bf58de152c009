"""The vend pipeline against a database (SQLite or PostgreSQL).

Known answers: docs/vending.md Example C (synthetic numbers checked by
computation there): first vend of the month R300 with R40 debt at 25 % gives
122.5 kWh; a second R100 vend gives 54.3 kWh.
"""

import unittest
from decimal import Decimal as D
from unittest.mock import patch

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .vend_fixtures import new_meter, new_point, open_session, with_vending


class VendTestCase(unittest.TestCase):
    "Vend pipeline"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def vend(self, env, tender, key, **kwargs):
        Vend = Pool().get('prepaid.vend')
        kwargs.setdefault('payment_method', 'cash')
        return Vend.vend(
            kwargs.pop('meter', env.meter),
            tender,
            kwargs.pop('payment_method'),
            env.sales_point,
            key,
            **kwargs,
        )

    @with_transaction()
    def test_example_c(self):
        "Example C: fixed charge, debt recovery, VAT, two blocks"
        pool = Pool()
        Debt = pool.get('prepaid.debt')
        with with_vending() as env:
            open_session(env)
            debt = Debt(
                party=env.customer,
                description='Arrears',
                amount=D('40.00'),
                recovery_percent=D(25),
            )
            debt.save()
            Debt.open([debt])
            vend = self.vend(env, D('300.00'), 'k1')
            self.assertEqual(vend.units_kwh, D('122.5'))
            kinds = {line.kind: line for line in vend.lines}
            self.assertEqual(kinds['charge'].gross, D('57.50'))
            self.assertEqual(kinds['debt'].amount, D('40.00'))
            energy = [line for line in vend.lines if line.kind == 'energy']
            self.assertEqual([e.kwh for e in energy], [D('50.0'), D('72.5')])
            self.assertEqual(sum(e.gross for e in energy), D('202.50'))
            self.assertEqual(sum(e.vat for e in energy), D('26.41'))
            self.assertEqual(sum(line.gross for line in vend.lines), D('300.00'))
            self.assertEqual(Debt(debt.id).state, 'paid')
            self.assertEqual(vend.debt_remaining, D('0'))
            # Second vend of the month: no charge, no debt, still block 2.
            second = self.vend(env, D('100.00'), 'k2')
            self.assertEqual(second.units_kwh, D('54.3'))
            self.assertEqual(second.month_kwh_before, D('122.5'))
            self.assertFalse([x for x in second.lines if x.kind == 'charge'])
            # Smart prepaid meter: the credit is queued for the head-end.
            (command,) = second.commands
            self.assertEqual(command.kind, 'remote_credit')
            self.assertEqual(command.state, 'pending')
            self.assertEqual(command.data['kwh'], '54.3')

    @with_transaction()
    def test_requested_kwh(self):
        "A cashier asks for kWh: the smallest tender that gives them"
        with with_vending() as env:
            open_session(env)
            vend = self.vend(env, None, 'k1', requested_kwh=D('40'))
            self.assertGreaterEqual(vend.units_kwh, D('40'))
            # 50 * 1.15 fixed + 40 * 1.20 * 1.15 = 57.50 + 55.20
            self.assertEqual(vend.tender, D('112.70'))

    @with_transaction()
    def test_trial_writes_nothing(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Position = pool.get('prepaid.meter.month_position')
        with with_vending() as env:
            quote = Vend.trial(env.meter, D('300.00'))
            self.assertEqual(quote.units_kwh, D('144.2'))
            self.assertEqual(Vend.search_count([]), 0)
            self.assertEqual(Position.search_count([]), 0)

    @with_transaction()
    def test_idempotent_retry(self):
        "A retried request returns the stored vend and charges once"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Move = pool.get('account.move')
        with with_vending() as env:
            open_session(env)
            first = self.vend(env, D('100.00'), 'same')
            again = self.vend(env, D('100.00'), 'same')
            self.assertEqual(first.id, again.id)
            self.assertEqual(Vend.search_count([]), 1)
            Vend.book_pending()
            self.assertEqual(Move.search_count([]), 1)
            other = new_meter('04000000002', new_point(env, 'SP2'))
            with self.assertRaisesRegex(UserError, 'already used'):
                self.vend(env, D('100.00'), 'same', meter=other)

    @with_transaction()
    def test_bad_input(self):
        "Bad input is refused with a clear message and writes nothing"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Meter = pool.get('prepaid.meter')
        with with_vending() as env:
            cases = [
                (D('-5.00'), {}, 'must be positive'),
                (D('5.00'), {}, 'below the minimum'),
                (D('9000.00'), {}, 'above the maximum'),
                (D('10.005'), {}, 'decimal places'),
                (D('20.00'), {}, 'no open shift'),
                (D('20.00'), {'payment_method': 'cheque'}, 'payment method'),
            ]
            for tender, kwargs, message in cases:
                with self.subTest(tender=tender, message=message):
                    with self.assertRaisesRegex(UserError, message):
                        self.vend(env, tender, f'bad-{tender}', **kwargs)
            open_session(env)
            with self.assertRaisesRegex(UserError, 'zero only to collect FBE'):
                self.vend(env, D('0'), 'zero')
            # Tender too small for the monthly fixed charge of 57.50.
            with self.assertRaisesRegex(UserError, 'does not cover'):
                self.vend(env, D('20.00'), 'small')
            Meter.write(
                [env.meter], {'vend_blocked': True, 'vend_blocked_reason': 'tamper'}
            )
            with self.assertRaisesRegex(UserError, 'blocked.*tamper'):
                self.vend(env, D('100.00'), 'blocked')
            Meter.write([env.meter], {'vend_blocked': False})
            stock = Meter(serial='04000000099', kind='smart_prepaid')
            stock.save()
            with self.assertRaisesRegex(UserError, 'in_stock'):
                self.vend(env, D('100.00'), 'stock', meter=stock)
            keypad = new_meter('04000000003', new_point(env, 'SP3'), kind='sts_keypad')
            # The hook raises after the vend row is written: the caller's
            # rollback (a savepoint here) removes it.
            cursor = Transaction().connection.cursor()
            cursor.execute('SAVEPOINT keypad')
            with self.assertRaisesRegex(UserError, 'prepaid_sts'):
                self.vend(env, D('100.00'), 'keypad', meter=keypad)
            cursor.execute('ROLLBACK TO SAVEPOINT keypad')
            self.assertEqual(Vend.search_count([]), 0)

    @with_transaction()
    def test_tariff_gap_refused(self):
        "A tariff with a gap in its blocks cannot be saved"
        pool = Pool()
        Block = pool.get('prepaid.tariff.block')
        with with_vending() as env:
            (version,) = env.tariff.versions
            block = version.blocks[1]
            with self.assertRaisesRegex(UserError, 'gap'):
                Block.write([block], {'from_kwh': D(60)})
                pool.get('prepaid.tariff.version')(version.id).to_calculator()

    @with_transaction()
    def test_version_dates_and_freeze(self):
        "A new version applies from its date; a used version is frozen"
        pool = Pool()
        Version = pool.get('prepaid.tariff.version')
        Block = pool.get('prepaid.tariff.block')
        with with_vending() as env:
            open_session(env)
            (old,) = env.tariff.versions
            vend = self.vend(env, D('300.00'), 'k1')
            self.assertEqual(vend.tariff_version, old)
            with self.assertRaisesRegex(AccessError, 'create a new version'):
                Block.write([old.blocks[0]], {'price': D('9')})
            import datetime as dt

            from .vend_fixtures import example_c_version

            new = example_c_version(
                env.tariff, env.tax, start=dt.date.today() + dt.timedelta(days=1)
            )
            new.save()
            later = self.vend(env, D('100.00'), 'k2')
            self.assertEqual(later.tariff_version, old)
            Version.write([new], {'start_date': dt.date.today()})
            latest = self.vend(env, D('100.00'), 'k3')
            self.assertEqual(latest.tariff_version, new)

    @with_transaction()
    def test_crash_leaves_nothing(self):
        "An error after the tokens rolls back vend, tokens, move and position"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Move = pool.get('account.move')
        Position = pool.get('prepaid.meter.month_position')
        Token = pool.get('prepaid.vend.token')
        with with_vending() as env:
            open_session(env)
            transaction = Transaction()
            # A savepoint stands in for the caller's transaction boundary.
            from trytond.modules.prepaid_vending import booking

            def boom(vend):
                raise RuntimeError('disk full')

            cursor = transaction.connection.cursor()
            cursor.execute('SAVEPOINT before_vend')
            # The last step of the pipeline: the booking task pushed.
            with patch.object(booking, 'schedule', boom):
                with self.assertRaises(RuntimeError):
                    self.vend(env, D('100.00'), 'crash')
            cursor.execute('ROLLBACK TO SAVEPOINT before_vend')
            self.assertEqual(Vend.search_count([]), 0)
            self.assertEqual(Token.search_count([]), 0)
            self.assertEqual(Move.search_count([]), 0)
            self.assertEqual(Position.search_count([]), 0)
            # The same request can then be retried and succeeds once.
            vend = self.vend(env, D('100.00'), 'crash')
            Vend.book_pending()
            self.assertTrue(Vend(vend.id).move)

    @with_transaction()
    def test_tokens_hook(self):
        "Tokens returned by the hook are saved with the vend, in order"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Token = pool.get('prepaid.vend.token')
        with with_vending() as env:
            open_session(env)

            def issue(self, units, fbe):
                return [
                    Token(
                        kind='credit',
                        token='1234' * 5,
                        units=units,
                        description='Credit',
                    )
                ]

            with patch.object(Vend, 'issue_credit_tokens', issue):
                vend = self.vend(env, D('100.00'), 'tok')
            (token,) = vend.tokens
            self.assertEqual(token.grouped, '1234 1234 1234 1234 1234')
            self.assertEqual(token.sequence, 1)
            with self.assertRaisesRegex(AccessError, 'cannot be changed'):
                Token.write([token], {'units': D(1)})

    @with_transaction()
    def test_receipt_and_reprint(self):
        pool = Pool()
        Reprint = pool.get('prepaid.vend.reprint')
        Vend = pool.get('prepaid.vend')
        from trytond.modules.prepaid_vending.receipt import receipt_html, receipt_text

        with with_vending() as env:
            open_session(env)
            vend = self.vend(env, D('300.00'), 'r1')
            text = receipt_text(vend)
            for expected in [
                'Receipt',
                vend.number,
                env.meter.serial,
                'Thandi Mokoena',
                'Fixed charge',
                'Block 1: 50.0 kWh @ 1.38',  # VAT included, as the amount
                'Total VAT',
                'Energy purchased',
                '144.2 kWh',
            ]:
                self.assertIn(expected, text)
            self.assertTrue(all(len(line) <= 48 for line in text.splitlines()))
            self.assertIn('<pre>', receipt_html(vend))
            for i in range(7):
                self.vend(env, D('20.00'), f'r{i + 2}')
            receipts = Reprint.reprint(env.meter, reason='lost')
            self.assertEqual(len(receipts), 5)  # configuration.reprint_count
            self.assertIn('REPRINT', receipts[0])
            self.assertEqual(Reprint.search_count([]), 5)
            self.assertEqual(Vend.search_count([]), 8)  # no credit created

    @with_transaction()
    def test_cancel_policy(self):
        "Cancellation: policy, manager, reason, reversing move"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Configuration = pool.get('prepaid.configuration')
        Command = pool.get('prepaid.meter.command')
        with with_vending() as env:
            open_session(env)
            vend = self.vend(env, D('100.00'), 'c1')
            with self.assertRaisesRegex(UserError, 'reason'):
                Vend.cancel_vends([vend], '')
            (command,) = vend.commands
            Command.mark_sent([command])
            Command.mark_accepted([command])
            with self.assertRaisesRegex(UserError, 'cannot be cancelled'):
                Vend.cancel_vends([vend], 'customer complaint')
            second = self.vend(env, D('100.00'), 'c2')
            Vend.book_pending()  # cancelled after its booking: reversed
            Command.mark_failed(list(second.commands), 'no route to meter')
            # A failed command may have reached the meter: reconcile first.
            with self.assertRaisesRegex(UserError, 'cannot be cancelled'):
                Vend.cancel_vends([second], 'never delivered')
            Command.reconcile_undelivered(
                list(second.commands), 'credit register read: unchanged'
            )
            Vend.cancel_vends([Vend(second.id)], 'never delivered')
            second = Vend(second.id)
            self.assertEqual(second.state, 'cancelled')
            self.assertEqual(
                second.cancel_move.lines[0].credit + second.cancel_move.lines[0].debit,
                D('100.00'),
            )
            total = sum(
                line.debit - line.credit
                for move in [second.move, second.cancel_move]
                for line in move.lines
                if line.account == env.cash
            )
            # The move books both vends of the shift: the reversal leaves c1's.
            self.assertEqual(total, Vend(vend.id).tender)
            Configuration.write([Configuration(1)], {'cancel_policy': 'manager'})
            Vend.cancel_vends([Vend(vend.id)], 'manager decision')
            self.assertEqual(Vend(vend.id).state, 'cancelled')
