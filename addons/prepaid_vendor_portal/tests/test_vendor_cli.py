"""The ``prepaid-vendor`` command (vendor_cli.py) in the test's transaction:
each sub-command does what it says, with the rights of the user it runs as,
and a refused or invalid command changes nothing."""

from __future__ import annotations

import io
import unittest
import unittest.mock
from decimal import Decimal as D

from trytond.exceptions import UserError
from trytond.modules.prepaid_vending.tests.staff import create_user
from trytond.modules.prepaid_vending.tests.tools import with_company
from trytond.modules.prepaid_vendor_portal import vendor_cli
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction

from .vendor_fixtures import create_vendor, setup_books


def run(user, *argv: str) -> str:
    "The command's output, run as user (a record) in this transaction"
    options = vendor_cli.build_parser().parse_args(['-d', 'unused', *argv])
    out = io.StringIO()
    with Transaction().set_user(user.id):
        assert vendor_cli.run(options, out) == vendor_cli.EXIT_OK
    return out.getvalue()


class VendorCliTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vendor_portal')

    @with_company
    def test_terminal_add_revoke_and_new_token(self):
        Terminal = Pool().get('prepaid.vendor.terminal')
        env = create_vendor(setup_books())
        manager = create_user('vm-cli', 'prepaid_vendor_portal.group_vendor_manager')
        out = run(
            manager,
            'terminal', 'add', 'KB', '--outlet', 'KB-B1',
            '--client-id', '6004708001', '--terminal-id', 'KB-T09',
        )  # fmt: skip
        token = out.split('api token ')[1].strip()
        self.assertGreaterEqual(len(token), 32)
        (terminal,) = Terminal.search([('terminal_id', '=', 'KB-T09')])
        self.assertEqual(terminal.state, 'active')
        self.assertEqual(terminal.outlet, env.outlet)
        self.assertTrue(terminal.check_token(token))
        self.assertNotIn(token, terminal.token_hash)

        run(manager, 'terminal', 'revoke', '6004708001', 'KB-T09')
        terminal = Terminal(terminal.id)
        self.assertTrue(terminal.revoked)
        self.assertFalse(terminal.check_token(token))
        out = run(manager, 'terminal', 'token', '6004708001', 'KB-T09')
        new = out.split('api token ')[1].strip()
        terminal = Terminal(terminal.id)
        self.assertFalse(terminal.revoked)
        self.assertTrue(terminal.check_token(new))
        self.assertFalse(terminal.check_token(token))

        with self.assertRaisesRegex(vendor_cli.Refused, 'no terminal'):
            run(manager, 'terminal', 'revoke', '6004708001', 'NOPE')
        with self.assertRaisesRegex(vendor_cli.Refused, 'no outlet'):
            run(
                manager,
                'terminal', 'add', 'KB', '--outlet', 'XX',
                '--client-id', '1', '--terminal-id', '2',
            )  # fmt: skip

    @with_company
    def test_top_up_by_an_accountant_only(self):
        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Move = pool.get('account.move')
        env = create_vendor(setup_books())
        accountant = create_user('acc-cli', 'accountant')
        manager = create_user('vm-cli2', 'prepaid_vendor_portal.group_vendor_manager')
        moves = Move.search_count([])
        with self.assertRaises(UserError):
            run(manager, 'top-up', 'KB', '250.00', '--reference', 'SLIP 1')
        self.assertEqual(Move.search_count([]), moves)

        out = run(accountant, 'top-up', 'KB', '250.00', '--reference', 'SLIP 1')
        self.assertIn('KB topped up 250.00', out)
        self.assertEqual(Vendor(env.vendor.id).float_balance, D('250.00'))
        (move,) = Move.search([('description', 'like', '%SLIP 1')])
        self.assertEqual(move.state, 'posted')
        self.assertEqual(move.origin, env.vendor)
        with self.assertRaisesRegex(vendor_cli.Refused, 'no open account'):
            run(accountant, 'top-up', 'KB', '5', '--reference', 'x', '--account', 'ZZ')
        self.assertEqual(Vendor(env.vendor.id).float_balance, D('250.00'))

    @with_company
    def test_suspend_and_activate_by_a_vendor_manager_only(self):
        Vendor = Pool().get('prepaid.vendor')
        env = create_vendor(setup_books())
        accountant = create_user('acc-cli2', 'accountant')
        manager = create_user('vm-cli3', 'prepaid_vendor_portal.group_vendor_manager')
        with self.assertRaises(UserError):
            run(accountant, 'suspend', 'KB')
        self.assertEqual(Vendor(env.vendor.id).state, 'active')
        self.assertEqual(run(manager, 'suspend', 'KB'), 'KB suspended\n')
        self.assertEqual(Vendor(env.vendor.id).state, 'suspended')
        self.assertEqual(run(manager, 'activate', 'KB'), 'KB active\n')
        self.assertIn('KB\tactive\tKwik Bank', run(manager, 'list'))
        with self.assertRaisesRegex(vendor_cli.Refused, 'no vendor'):
            run(manager, 'suspend', 'NOPE')

    def test_usage_errors(self):
        for argv in (
            ['-d', 'x', 'top-up', 'KB', '-5', '--reference', 'r'],
            ['-d', 'x', 'top-up', 'KB', '1.005', '--reference', 'r'],
            ['-d', 'x', 'top-up', 'KB', 'NaN', '--reference', 'r'],
            [
                '-d',
                'x',
                'top-up',
                'KB',
                '10',
                '--reference',
                'r',
                '--date',
                '2026-13-01',
            ],
            ['-d', 'x', 'terminal', 'drop', 'a', 'b'],
            ['-d', 'x'],
        ):
            with self.subTest(argv=argv):
                stderr = io.StringIO()
                with unittest.mock.patch('sys.stderr', stderr):
                    self.assertEqual(vendor_cli.main(argv), vendor_cli.EXIT_USAGE)
