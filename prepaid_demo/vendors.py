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

A second vendor (``DEMO-SAMPLES``) carries the identities of the XMLVend
request samples (``addons/prepaid_vendor_portal/tests/data/xmlvend``): their
clientIDs and terminalIDs, the operator CASHIER7 and keypad meters with the
samples' meter numbers, so that each sample replayed against the demo gets a
real answer.  Its terminals all take the public token below: in the
``X-XMLVend-Token`` header where an operator is required (the samples'
authCred is the operator's), in the header or authCred on the service
terminal of the Eskom mock sample (which sends no authCred).
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

SAMPLE_VENDOR_CODE = 'DEMO-SAMPLES'
SAMPLE_API_TOKEN = 'demo-xmlvend-samples-token-public-never-for-real'
SAMPLE_FLOAT = Decimal('10000.00')
#: (clientID, terminalID, operator required) of the request samples: the
#: Hexing-style tills log an operator in, the Eskom mock is a service client.
SAMPLE_TERMINALS = (
    ('6009990000012', '000771', True),
    ('6009990000012', '6009990000012', True),
    ('6009990000012', 'T2026,03', True),
    ('6004708001981', '0000000000001', False),
)
SAMPLE_OPERATOR = 'CASHIER7'
SAMPLE_OPERATOR_PASSWORD = 'pass-7'
#: Meter numbers of the samples: keypad STS meters of residential customers.
SAMPLE_METERS = ('37112345678', '01234567890')


class Demo:
    "The vendor part of the demo"

    @classmethod
    def extend_vending(cls, meters, seed):
        "The demo bank and the samples' vendor, created once (every set-up)"
        counts = cls._bank()
        counts.update(cls._samples())
        return counts

    @classmethod
    def _bank(cls):
        from trytond.modules.prepaid_vendor_portal.vendor_float import top_up
        from trytond.pool import Pool

        Vendor = Pool().get('prepaid.vendor')
        existing = Vendor.search([('code', '=', VENDOR_CODE)], limit=1)
        if existing:
            # A demo database made before the portal gets its login now.
            cls._portal_login(existing[0])
            return {'vendor': VENDOR_CODE}
        vendor = cls._create_vendor(
            'Demo Bank',
            VENDOR_CODE,
            ('Main Branch', 'DEMO-B1'),
            [
                {
                    'name': 'API till',
                    'client_id': CLIENT_ID,
                    'terminal_id': TERMINAL_ID,
                    'api_token': API_TOKEN,
                }
            ],
        )
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
    def _samples(cls):
        """The samples' vendor with its terminals, operator and float, and
        the samples' meters, each created once"""
        from trytond.modules.prepaid_vendor_portal.vendor_float import top_up
        from trytond.pool import Pool

        pool = Pool()
        Vendor = pool.get('prepaid.vendor')
        Operator = pool.get('prepaid.vendor.operator')
        counts = {'sample_meters': cls._sample_meters()}
        if Vendor.search([('code', '=', SAMPLE_VENDOR_CODE)], limit=1):
            return counts
        vendor = cls._create_vendor(
            'XMLVend Samples Vendor',
            SAMPLE_VENDOR_CODE,
            ('Samples Outlet', 'DEMO-S1'),
            [
                {
                    'name': f'Sample till {terminal_id}',
                    'client_id': client_id,
                    'terminal_id': terminal_id,
                    'api_token': SAMPLE_API_TOKEN,
                    'operator_required': operator_required,
                }
                for client_id, terminal_id, operator_required in SAMPLE_TERMINALS
            ],
        )
        (operator,) = Operator.create(
            [
                {
                    'vendor': vendor.id,
                    'login': SAMPLE_OPERATOR,
                    'name': 'Sample cashier',
                    'password': SAMPLE_OPERATOR_PASSWORD,
                }
            ]
        )
        Operator.activate([operator])
        bank = pool.get('prepaid.configuration')(1).bank_account
        top_up(vendor, SAMPLE_FLOAT, bank, dt.date.today(), 'demo samples float')
        counts.update(
            {'sample_vendor': SAMPLE_VENDOR_CODE, 'sample_float': str(SAMPLE_FLOAT)}
        )
        return counts

    @classmethod
    def _sample_meters(cls) -> int:
        """The samples' meters that are missing, installed through the
        importer on the first demo transformer for a residential customer
        and commissioned with the demo's STS key; returns how many"""
        from trytond.modules.prepaid_vending.excel_import import (
            COLUMN_NAMES,
            import_rows,
        )
        from trytond.pool import Pool
        from trytond.transaction import Transaction

        from prepaid_demo import sts
        from prepaid_demo.vending import CITY, POSTAL_CODE, SUBSTATION_CODES

        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Transformer = pool.get('prepaid.transformer')
        company = Transaction().context['company']
        existing = {
            m.serial
            for m in Meter.search(
                [('company', '=', company), ('serial', 'in', SAMPLE_METERS)]
            )
        }
        missing = [s for s in SAMPLE_METERS if s not in existing]
        transformers = Transformer.search(
            [('feeder.substation.code', 'in', SUBSTATION_CODES)],
            order=[('code', 'ASC')],
            limit=1,
        )
        if not missing or not transformers:
            # No demo network (the base data was not created): nothing to
            # install the meters on.
            return 0
        rows = [
            {
                'customer_name': f'Sample Customer {serial}',
                'category': 'RESIDENTIAL',
                'street': f'{number} Sample Street',
                'city': CITY,
                'postal_code': POSTAL_CODE,
                'transformer_code': transformers[0].code,
                'meter_serial': serial,
                'meter_kind': 'sts_keypad',
                'manufacturer': 'Hexing',
                'model': 'HXE110-KP',
                'installed_on': dt.date(2025, 1, 1),
                'install_reading': 0,
            }
            for number, serial in enumerate(missing, 1)
        ]
        header = list(COLUMN_NAMES)
        table = [(i + 2, [row.get(n) for n in header]) for i, row in enumerate(rows)]
        result = import_rows(header, table, mode='all')
        if result.rejected:
            raise RuntimeError(
                'demo sample meters rejected: '
                + '; '.join(f'row {r.number}: {r.reason}' for r in result.rejected)
            )
        sts.Demo._commission_meters(Meter.browse(result.meter_ids))
        return len(result.meter_ids)

    @classmethod
    def _create_vendor(cls, name, code, outlet, terminals):
        "An active vendor with one outlet (name, code) and its terminals"
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
        (party,) = Party.create([{'name': name}])
        (vendor,) = Vendor.create(
            [
                {
                    'name': name,
                    'code': code,
                    'party': party.id,
                    'float_account': float_account.id,
                }
            ]
        )
        (outlet,) = Outlet.create(
            [{'vendor': vendor.id, 'name': outlet[0], 'code': outlet[1]}]
        )
        created = Terminal.create([{'outlet': outlet.id, **t} for t in terminals])
        Vendor.activate([vendor])
        Outlet.activate([outlet])
        Terminal.activate(created)
        return vendor
