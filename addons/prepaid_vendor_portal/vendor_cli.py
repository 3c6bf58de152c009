"""The ``prepaid-vendor`` command: vendor administration for scripts.

    prepaid-vendor -c trytond.conf -d DB [--user LOGIN] list
    prepaid-vendor ... terminal add VENDOR --outlet CODE --client-id ID
                                   --terminal-id ID [--name N] [--operator-required]
    prepaid-vendor ... terminal revoke CLIENT_ID TERMINAL_ID
    prepaid-vendor ... terminal token CLIENT_ID TERMINAL_ID
    prepaid-vendor ... top-up VENDOR AMOUNT --reference REF
                              [--kind deposit|credit] [--account CODE] [--date D]
    prepaid-vendor ... suspend VENDOR
    prepaid-vendor ... activate VENDOR

VENDOR is the vendor's code.  The command runs as the Tryton user ``--user``
(default admin) with that user's rights, as if the user pressed the buttons
in the web client: an Accountant may top up but not suspend, a Vendor
Manager the reverse.  Everything of one call is one transaction: an error
changes nothing.  A new terminal's API token (and a replaced one) is
generated here and printed once; only its digest is stored.

Exit status: 0 done, 1 refused (unknown record, rights, invalid input; the
reason on stderr), 64 usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TextIO

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 64


class Refused(Exception):
    "The command cannot be done: the message says why"


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal('0.01')):
        raise argparse.ArgumentTypeError(
            f"the amount must be positive with at most 2 decimals: {text!r}"
        )
    return value


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='prepaid-vendor',
        description="Administer third-party vendors: terminals, float "
        "top-ups, suspension.",
    )
    parser.add_argument(
        '-c',
        '--config',
        default=os.environ.get('TRYTOND_CONFIG'),
        help="trytond configuration file (default $TRYTOND_CONFIG)",
    )
    parser.add_argument('-d', '--database', required=True, help="database name")
    parser.add_argument(
        '--user',
        default='admin',
        help="login whose rights the command uses (default admin)",
    )
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('list', help="vendors with their state and float")

    terminal = commands.add_parser('terminal', help="add, revoke, new token")
    actions = terminal.add_subparsers(dest='action', required=True)
    add = actions.add_parser('add', help="a new terminal, active, with its token")
    add.add_argument('vendor', help="vendor code")
    add.add_argument('--outlet', required=True, help="outlet code")
    add.add_argument('--client-id', required=True, help="XMLVend clientID")
    add.add_argument('--terminal-id', required=True, help="XMLVend terminalID")
    add.add_argument('--name', help="the terminal's name")
    add.add_argument(
        '--operator-required',
        action='store_true',
        help="requests must name an operator with its password",
    )
    for name, text in (
        ('revoke', "refuse the terminal's token and certificate"),
        ('token', "replace the terminal's API token (also after a revoke)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument('client_id')
        action.add_argument('terminal_id')

    top_up = commands.add_parser('top-up', help="book a float top-up")
    top_up.add_argument('vendor', help="vendor code")
    top_up.add_argument('amount', type=_amount)
    top_up.add_argument(
        '--reference', required=True, help="deposit slip or agreement reference"
    )
    top_up.add_argument(
        '--kind',
        choices=['deposit', 'credit'],
        default='deposit',
        help="a bank deposit (default) or credit advanced",
    )
    top_up.add_argument(
        '--account',
        help="code of the debit account (default: the bank account of the "
        "vending configuration)",
    )
    top_up.add_argument(
        '--date', type=_date, default=None, help="booking date (default today)"
    )
    for name, text in (
        ('suspend', "refuse the vendor's sales until activated again"),
        ('activate', "activate a draft or suspended vendor"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument('vendor', help="vendor code")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        options = parser.parse_args(argv)
    except SystemExit as exit:
        return EXIT_OK if exit.code == 0 else EXIT_USAGE

    from trytond import config

    config.update_etc(options.config)
    from trytond.modules.prepaid_vending.transactions import run_transaction
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    try:
        pool = Pool(options.database)
        with Transaction().start(options.database, 0, readonly=True):
            pool.init()
            User = pool.get('res.user')
            users = User.search([('login', '=', options.user)])
            if not users:
                raise Refused(f"no user with login {options.user!r}")
            user_id = users[0].id
            context = User.get_preferences(context_only=True)
        return run_transaction(
            options.database, user_id, lambda: run(options, sys.stdout), context
        )
    except Refused as error:
        print(f"prepaid-vendor: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as error:  # unknown database, bad configuration
        message = getattr(error, 'message', None) or str(error)
        print(f"prepaid-vendor: {message}", file=sys.stderr)
        return EXIT_REFUSED


def run(options: argparse.Namespace, out: TextIO) -> int:
    """Run the parsed command in the current transaction with the user's
    rights (access checks on); Refused or the model's own UserError when it
    cannot be done."""
    from trytond.transaction import check_access

    handler = {
        'list': _list,
        'terminal': _terminal,
        'top-up': _top_up,
        'suspend': _lifecycle,
        'activate': _lifecycle,
    }[options.command]
    with check_access():
        handler(options, out)
    return EXIT_OK


def _vendor(code: str):
    from trytond.pool import Pool

    Vendor = Pool().get('prepaid.vendor')
    vendors = Vendor.search([('code', '=', code)])
    if len(vendors) != 1:
        raise Refused(f"no vendor with code {code!r} in the user's company")
    return vendors[0]


def _list(options: argparse.Namespace, out: TextIO) -> None:
    from trytond.pool import Pool

    Vendor = Pool().get('prepaid.vendor')
    for vendor in Vendor.search([]):
        out.write(
            f"{vendor.code}\t{vendor.state}\t{vendor.name}\t"
            f"balance {vendor.float_balance}\tavailable {vendor.float_available}\n"
        )


def _terminal_record(client_id: str, terminal_id: str):
    from trytond.pool import Pool

    Terminal = Pool().get('prepaid.vendor.terminal')
    terminals = Terminal.search(
        [('client_id', '=', client_id), ('terminal_id', '=', terminal_id)]
    )
    if len(terminals) != 1:
        raise Refused(f"no terminal {client_id}/{terminal_id} in the user's company")
    return terminals[0]


def _new_token() -> str:
    # 43 URL-safe characters (256 bits); the terminal needs at least 32.
    return secrets.token_urlsafe(32)


def _terminal(options: argparse.Namespace, out: TextIO) -> None:
    from trytond.pool import Pool

    Terminal = Pool().get('prepaid.vendor.terminal')
    if options.action == 'revoke':
        terminal = _terminal_record(options.client_id, options.terminal_id)
        Terminal.revoke([terminal])
        out.write(f"revoked {terminal.rec_name}\n")
        return
    if options.action == 'token':
        terminal = _terminal_record(options.client_id, options.terminal_id)
        token = _new_token()
        Terminal.write([terminal], {'api_token': token})
        out.write(f"{terminal.rec_name}\napi token {token}\n")
        return
    vendor = _vendor(options.vendor)
    Outlet = Pool().get('prepaid.vendor.outlet')
    outlets = Outlet.search([('vendor', '=', vendor.id), ('code', '=', options.outlet)])
    if len(outlets) != 1:
        raise Refused(f"vendor {vendor.code} has no outlet {options.outlet!r}")
    token = _new_token()
    (terminal,) = Terminal.create(
        [
            {
                'outlet': outlets[0].id,
                'client_id': options.client_id,
                'terminal_id': options.terminal_id,
                'name': options.name,
                'operator_required': options.operator_required,
                'api_token': token,
            }
        ]
    )
    Terminal.activate([terminal])
    out.write(f"{terminal.rec_name}\napi token {token}\n")


def _top_up(options: argparse.Namespace, out: TextIO) -> None:
    from trytond.modules.prepaid_vending import accounting
    from trytond.modules.prepaid_vending.access import require_wizard_groups
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    from .vendor_float import top_up

    # The rights of the Top Up wizard (Accountants, Administrators).
    require_wizard_groups('prepaid.vendor.top_up')
    vendor = _vendor(options.vendor)
    Account = Pool().get('account.account')
    with Transaction().set_context(company=vendor.company.id):
        if options.account:
            accounts = Account.search(
                [
                    ('code', '=', options.account),
                    ('company', '=', vendor.company.id),
                    ('type', '!=', None),
                    ('closed', '!=', True),
                ]
            )
            if len(accounts) != 1:
                raise Refused(f"no open account with code {options.account!r}")
            account = accounts[0]
        else:
            account = accounting.VendConfig.get().bank_account
            if account is None:
                raise Refused(
                    "no bank account in the vending configuration: give --account"
                )
    move = top_up(
        vendor,
        options.amount,
        account,
        options.date or dt.date.today(),
        f'{options.kind} {options.reference}',
    )
    vendor = _vendor(options.vendor)
    out.write(
        f"{vendor.code} topped up {options.amount} (move {move.number or move.id}); "
        f"balance {vendor.float_balance}, available {vendor.float_available}\n"
    )


def _lifecycle(options: argparse.Namespace, out: TextIO) -> None:
    from trytond.pool import Pool

    Vendor = Pool().get('prepaid.vendor')
    vendor = _vendor(options.vendor)
    wanted = {'suspend': 'suspended', 'activate': 'active'}[options.command]
    getattr(Vendor, options.command)([vendor])
    vendor = Vendor(vendor.id)
    if vendor.state != wanted:
        raise Refused(
            f"vendor {vendor.code} is {vendor.state}: cannot {options.command}"
        )
    out.write(f"{vendor.code} {vendor.state}\n")


if __name__ == '__main__':
    sys.exit(main())
