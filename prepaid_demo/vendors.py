"""The vendor part of the demo (see prepaid_demo.vending): one bank that
sells the demo utility's electricity through an XMLVend till.

The bank (vendor ``DEMO-BANK``) has a branch and one API terminal, its float
topped up from the demo's bank account, so that an XMLVend client (a zeep
client built from ``/demo/xmlvend?wsdl``, SoapUI, a till) can buy tokens
from the demo at once.  The terminal's API token is public, printed by the
demo's banner, like the demo's admin password: never for a real vendor.
The bank's administrator logs in to the vendor portal
(``/demo/vendor-portal/``) with the public demo login below, also printed
by the banner.  The constants import without trytond (the banner's command
has none).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

VENDOR_CODE = 'DEMO-BANK'
CLIENT_ID = '6004708001'
TERMINAL_ID = 'DEMO-T01'
API_TOKEN = 'demo-xmlvend-token-public-never-for-real-vendors'
OPENING_FLOAT = Decimal('50000.00')
PORTAL_EMAIL = 'admin@demo-bank.example'
PORTAL_PASSWORD = 'demo-portal-public'


class Demo:
    "The vendor part of the demo"

    @classmethod
    def extend_vending(cls, meters, seed):
        "The demo bank, created once (it runs on every set-up)"
        from trytond.modules.prepaid_vendor_portal.vendor_float import top_up
        from trytond.pool import Pool

        Vendor = Pool().get('prepaid.vendor')
        existing = Vendor.search([('code', '=', VENDOR_CODE)], limit=1)
        if existing:
            # A demo database made before the portal gets its login now.
            cls._portal_login(existing[0])
            return {'vendor': VENDOR_CODE}
        vendor = cls._create_vendor()
        bank = Pool().get('prepaid.configuration')(1).bank_account
        top_up(vendor, OPENING_FLOAT, bank, dt.date.today(), 'demo opening float')
        cls._portal_login(vendor)
        return {'vendor': VENDOR_CODE, 'vendor_float': str(OPENING_FLOAT)}

    @classmethod
    def _portal_login(cls, vendor) -> None:
        "The bank's Vendor Administrator on the portal, once"
        from trytond.pool import Pool

        pool = Pool()
        WebUser = pool.get('web.user')
        Link = pool.get('prepaid.vendor.web_user')
        users = WebUser.search([('email', '=', PORTAL_EMAIL)], limit=1)
        if not users:
            users = WebUser.create(
                [{'email': PORTAL_EMAIL, 'password': PORTAL_PASSWORD}]
            )
        if not Link.search([('web_user', '=', users[0].id)], limit=1):
            Link.create(
                [
                    {
                        'company': vendor.company.id,
                        'vendor': vendor.id,
                        'web_user': users[0].id,
                        'role': 'administrator',
                    }
                ]
            )

    @classmethod
    def _create_vendor(cls):
        from trytond.pool import Pool
        from trytond.transaction import Transaction

        pool = Pool()
        Party = pool.get('party.party')
        Account = pool.get('account.account')
        Vendor = pool.get('prepaid.vendor')
        Outlet = pool.get('prepaid.vendor.outlet')
        Terminal = pool.get('prepaid.vendor.terminal')
        company = Transaction().context['company']
        (float_account,) = Account.search(
            [
                ('company', '=', company),
                ('type.payable', '=', True),
                ('party_required', '=', True),
                ('closed', '!=', True),
            ],
            order=[('code', 'ASC')],
            limit=1,
        )
        (party,) = Party.create([{'name': 'Demo Bank'}])
        (vendor,) = Vendor.create(
            [
                {
                    'name': 'Demo Bank',
                    'code': VENDOR_CODE,
                    'party': party.id,
                    'float_account': float_account.id,
                }
            ]
        )
        (outlet,) = Outlet.create(
            [{'vendor': vendor.id, 'name': 'Main Branch', 'code': 'DEMO-B1'}]
        )
        (terminal,) = Terminal.create(
            [
                {
                    'outlet': outlet.id,
                    'name': 'API till',
                    'client_id': CLIENT_ID,
                    'terminal_id': TERMINAL_ID,
                    'api_token': API_TOKEN,
                }
            ]
        )
        Vendor.activate([vendor])
        Outlet.activate([outlet])
        Terminal.activate([terminal])
        return vendor
