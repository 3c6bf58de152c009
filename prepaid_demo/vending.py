"""Deterministic demo data: a small utility around one city.

`create_demo_data(seed, customers)` builds, inside the current transaction:
2 substations, 4 feeders, 12 distribution transformers (100/200/315/500 kVA),
a master (check) meter installed at each transformer, and `customers`
customers, each with a service point on a transformer and a customer meter
whose master is the transformer's master meter.  The customers, service points
and meters go through the Excel importer (`excel_import.import_rows`), so the
demo exercises the same validation and batch writes as a real import.

Everything comes from `random.Random(seed)`: the same seed gives the same
names, serials and dates.  It does nothing when the demo substations exist.

The higher modules' parts of the demo (`PARTS`: STS parameters, communication
settings) run where their module is activated: each part module has a `Demo`
class with `extend_meters(meters, rng)` and/or `extend_vending(meters, seed)`,
returning counts that are merged into the result.  `meters` are all the demo
meters (customer and master), `rng` a `random.Random` derived from the seed
(independent of the base data, so a part does not change the base serials).

`setup_demo_vending(seed)` then makes the demo sellable, inside a company
with its chart of accounts and 15 % VAT (``prepaid_demo.company``): the vending
accounts of the configuration, a "Vending" journal, the company's currency
and the residential category as defaults of the system parameters (a
customer entered by hand or imported without a category is a household), one
tariff per customer category (`DEMO_TARIFFS`), the "Head Office" sales point
and admin in the Cashier group, so admin can open a shift and sell.  Each
step looks for what exists first, so it runs on every ``scripts/demo``, also
on a demo database created before it existed.  The parts complete it through
`extend_vending(meters, seed)` (the STS part stores a demo vending key and
commissions the keypad and smart meters).

This is demo code, not part of the modules: it runs in the process that
loads the demo (``scripts/setup_demo.py``, ``prepaid-import --demo``, the
tests), inside a trytond transaction, never in the server.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

# STS meter numbers end with a Luhn check digit: the engine's, for any kind.
from trytond.modules.prepaid_sts.engine.identifiers import (
    luhn_check_digit as luhn_digit,
)
from trytond.modules.prepaid_vending.excel_import import COLUMN_NAMES, import_rows
from trytond.pool import Pool
from trytond.transaction import Transaction, without_check_access

SUBSTATION_CODES = ('SS-DEMO-1', 'SS-DEMO-2')
CITY = 'Polokwane'
CITY_GPS = (-23.9045, 29.4689)
POSTAL_CODE = '0700'
SUBURBS = (
    'Bendor',
    'Fauna Park',
    'Ivy Park',
    'Westenburg',
    'Flora Park',
    'Seshego',
    'Nirvana',
    'Welgelegen',
    'Ladanna',
    'Annadale',
)
STREETS = (
    'Acacia',
    'Baobab',
    'Marula',
    'Mopani',
    'Jacaranda',
    'Protea',
    'Thorn',
    'Kiaat',
    'Tambotie',
    'Syringa',
    'Leadwood',
    'Wild Fig',
)
STREET_KINDS = ('Street', 'Road', 'Avenue', 'Crescent', 'Drive')
FIRST_NAMES = (
    'Thabo',
    'Lerato',
    'Sipho',
    'Naledi',
    'Tshepo',
    'Palesa',
    'Mpho',
    'Karabo',
    'Kagiso',
    'Dineo',
    'Johan',
    'Annelie',
    'Pieter',
    'Maria',
    'Themba',
    'Zanele',
    'Lindiwe',
    'Bongani',
    'Refilwe',
    'Tumelo',
    'Ayesha',
    'Rajesh',
    'Grace',
    'Joseph',
    'Precious',
    'Samuel',
)
LAST_NAMES = (
    'Mokoena',
    'Nkosi',
    'Dlamini',
    'Mahlangu',
    'Molefe',
    'Sithole',
    'Ramaphosa',
    'Maluleke',
    'Baloyi',
    'Mathebula',
    'Van der Merwe',
    'Botha',
    'Pretorius',
    'Naidoo',
    'Pillay',
    'Khoza',
    'Mabena',
    'Ngobeni',
    'Shabangu',
    'Chauke',
    'Sebola',
    'Ledwaba',
    'Masilela',
    'Moloto',
)
BUSINESS_KINDS = (
    'Trading',
    'General Dealer',
    'Butchery',
    'Hardware',
    'Motors',
    'Bakery',
    'Pharmacy',
    'Tavern',
    'Salon',
    'Spaza',
)
INDUSTRY_KINDS = (
    'Milling',
    'Engineering',
    'Cold Storage',
    'Brickworks',
    'Packaging',
    'Steel Works',
)
GOVERNMENT = (
    'Clinic',
    'Primary School',
    'Police Station',
    'Library',
    'Magistrate Court',
    'Water Pump Station',
    'Community Hall',
)
# (code, share of the customers): most customers of a distribution utility
# are households.
CATEGORIES = (
    ('RESIDENTIAL', 0.85),
    ('COMMERCIAL', 0.10),
    ('INDUSTRIAL', 0.03),
    ('GOVERNMENT', 0.02),
)
# (manufacturer, model, kinds it is used for)
METER_MODELS = (
    ('Hexing', 'HXE110-KP', 'sts_keypad'),
    ('Conlog', 'BEC23', 'sts_keypad'),
    ('Itron', 'CE110-STS', 'sts_keypad'),
    ('Holley', 'DDSY285', 'sts_keypad'),
    ('Landis+Gyr', 'E460', 'smart_prepaid'),
    ('Hexing', 'HXE310', 'smart_prepaid'),
    ('Kamstrup', 'Omnipower', 'postpaid'),
)
KVA_CT = {100: 40, 200: 60, 315: 100, 500: 160}  # CT ratio of the check meter
FEEDERS_PER_SUBSTATION = 2
TRANSFORMERS_PER_FEEDER = 3
#: (meter kind, weight) of a customer's meter; a government building drawn a
#: keypad meter gets a postpaid one (public buildings are often on credit).
METER_KIND_WEIGHTS = (('sts_keypad', 75), ('smart_prepaid', 20), ('postpaid', 5))
#: Customer categories whose meters are always three-phase.
THREE_PHASE_CATEGORIES = frozenset({'INDUSTRIAL', 'GOVERNMENT'})


#: Tariffs of the demo: (code, name, STS tariff index, customer categories,
#: kind, blocks as (upper kWh or None, price per kWh excl. VAT), monthly
#: service charge excl. VAT).  Residential prices follow docs/vending.md Example C
#: with a fourth block; prices exclude the 15 % VAT.
DEMO_TARIFFS = (
    (
        'DEMO-RES',
        "Residential (inclining blocks)",
        '01',
        ('RESIDENTIAL',),
        'step',
        ((50, '1.20'), (350, '1.60'), (600, '2.10'), (None, '2.45')),
        '50.00',
    ),
    (
        'DEMO-COM',
        "Commercial (flat)",
        '02',
        ('COMMERCIAL', 'GOVERNMENT'),
        'flat',
        ((None, '2.35'),),
        '150.00',
    ),
    (
        'DEMO-IND',
        "Industrial (flat)",
        '03',
        ('INDUSTRIAL',),
        'flat',
        ((None, '1.95'),),
        '450.00',
    ),
)
DEMO_TARIFF_START = dt.date(2025, 1, 1)
DEMO_VAT_NAME = 'VAT 15%'  # created by company.ensure_vat
DEMO_JOURNAL_CODE = 'VEND'
DEMO_SALES_POINT = ('HO', "Head Office")
#: Default customer category of the system parameters: most customers are
#: households (CATEGORIES).
DEMO_DEFAULT_CATEGORY = 'RESIDENTIAL'
#: Vending configuration field -> account code in Tryton's standard chart
#: (account_chart_en); a value already chosen is kept.
DEMO_ACCOUNT_CODES = {
    'energy_revenue_account': '4.1.1',  # Goods
    'charge_revenue_account': '4.1.2',  # Services
    'fee_revenue_account': '4.1.2',
    'debt_account': '1.2.1',  # Accounts, Notes And Loans Receivable
    'emergency_credit_account': '1.2.3',  # Nontrade And Other Receivables
    'prepayment_account': '2.2.2',  # Deferred Income (Unearned Revenue)
    'cash_account': '1.1.1',  # Cash and Cash Equivalents
    'bank_account': '1.1.1',
    'cash_difference_account': '6.2.8',  # Other Gains And Losses
}
#: The higher modules' parts of the demo, in the order of the modules'
#: dependencies: (module, the part's module in this package).
PARTS = (
    ('prepaid_sts', 'prepaid_demo.sts'),
    ('prepaid_headend', 'prepaid_demo.headend'),
    ('prepaid_vendor_portal', 'prepaid_demo.vendors'),
)


def create_demo_data(seed: int = 8000, customers: int = 200) -> dict[str, Any]:
    "Create the demo utility in the current transaction (see module doc)"
    return Demo.create_data(seed=seed, customers=customers)


def setup_demo_vending(seed: int = 8000) -> dict[str, Any]:
    """Make the demo sellable (see module doc); needs the company in the
    context, with its chart of accounts and VAT.  Idempotent."""
    return Demo.setup_vending(seed=seed)


def active_parts() -> list:
    "The Demo classes of the parts whose module is activated, in order"
    Module = Pool().get('ir.module')
    with without_check_access():
        modules = Module.search(
            [('name', 'in', [m for m, _ in PARTS]), ('state', '=', 'activated')]
        )
    activated = {m.name for m in modules}
    return [importlib.import_module(p).Demo for m, p in PARTS if m in activated]


class Demo:
    "Demo data generator: its steps, which the parts complete"

    @classmethod
    def create_data(cls, seed: int = 8000, customers: int = 200) -> dict[str, Any]:
        pool = Pool()
        Substation = pool.get('prepaid.substation')
        Meter = pool.get('prepaid.meter')
        if Substation.search([('code', 'in', SUBSTATION_CODES)], limit=1):
            return {'created': False}
        if not Transaction().context.get('company'):
            # The demo utility's network, meters and tariffs are a company's.
            raise ValueError('the demo data needs a company in the context')
        rng = random.Random(seed)
        transformers, masters = cls.create_network(rng)
        serials = {m.serial for m in masters}
        header = list(COLUMN_NAMES)
        rows = cls.customer_rows(rng, customers, transformers, serials)
        table = [(i + 2, [row.get(n) for n in header]) for i, row in enumerate(rows)]
        result = import_rows(header, table, mode='all', today=dt.date(2025, 1, 1))
        if result.rejected:
            # The generator and the importer disagree: a bug, not user data.
            raise RuntimeError(
                'demo rows rejected: '
                + '; '.join(f'row {r.number}: {r.reason}' for r in result.rejected[:5])
            )
        meters = masters + Meter.browse(result.meter_ids)
        counts: dict[str, Any] = {
            'created': True,
            'substations': len(SUBSTATION_CODES),
            'feeders': len({t.feeder.id for t in transformers}),
            'transformers': len(transformers),
            'master_meters': len(masters),
            'customers': result.parties,
            'service_points': result.service_points + len(masters),
            'meters': len(meters),
            'meter_ids': [m.id for m in meters],
        }
        counts.update(cls.extend_meters(meters, random.Random(f'{seed}-extend')))
        return counts

    @classmethod
    def extend_meters(cls, meters: list, rng: random.Random) -> dict[str, Any]:
        "The parts complete the demo meters; returns their counts"
        counts: dict[str, Any] = {}
        for part in active_parts():
            if hasattr(part, 'extend_meters'):
                counts.update(part.extend_meters(meters, rng))
        return counts

    @classmethod
    def extend_vending(cls, meters: list, seed: int) -> dict[str, Any]:
        """The parts give the demo meters what they need to be sold (keys,
        meter parameters).  It runs on every set-up, so a part must leave
        what exists alone.  A part derives its random values from seed (e.g.
        ``random.Random(f'{seed}-<purpose>')``); returns their counts."""
        counts: dict[str, Any] = {}
        for part in active_parts():
            if hasattr(part, 'extend_vending'):
                counts.update(part.extend_vending(meters, seed))
        return counts

    @classmethod
    def demo_meters(cls) -> list:
        "The meters installed under the demo substations"
        Meter = Pool().get('prepaid.meter')
        return Meter.search(
            [
                (
                    'service_point.transformer.feeder.substation.code',
                    'in',
                    SUBSTATION_CODES,
                )
            ],
            order=[('serial', 'ASC')],
        )

    @classmethod
    def setup_vending(cls, seed: int = 8000) -> dict[str, Any]:
        pool = Pool()
        Company = pool.get('company.company')
        company_id = Transaction().context.get('company')
        if not company_id:
            raise ValueError(
                'setup_demo_vending needs the company in the context '
                '(run prepaid_demo.company.setup_company first)'
            )
        company = Company(company_id)
        with without_check_access():
            counts: dict[str, Any] = {}
            counts['vending_accounts_set'] = cls._setup_accounts(company)
            counts['system_defaults_set'] = cls._setup_defaults(company)
            counts['tariffs_created'] = cls._setup_tariffs(company)
            counts['sales_point'] = cls._setup_sales_point().code
            counts['admin_cashier'] = cls._setup_admin()
            counts.update(cls.extend_vending(cls.demo_meters(), seed))
        return counts

    @classmethod
    def _account(cls, company, code: str):
        Account = Pool().get('account.account')
        accounts = Account.search(
            [('company', '=', company.id), ('code', '=', code), ('closed', '!=', True)],
            limit=1,
        )
        if not accounts:
            raise ValueError(
                f'account {code} not found in the chart of {company.rec_name}: '
                'the demo expects the standard chart (company.ensure_chart)'
            )
        return accounts[0]

    @classmethod
    def _fill_configuration(cls, makers: dict[str, Callable[[], Any]]) -> int:
        """Write a value to each empty field of the vending configuration, made
        by its maker only then (a value chosen by hand is kept; a maker that
        finds nothing returns None); returns how many were set."""
        Configuration = Pool().get('prepaid.configuration')
        # A singleton reads its defaults before its row exists, and its
        # write creates the row.
        config = Configuration.get_singleton() or Configuration(1)
        values: dict[str, Any] = {}
        for name, make in makers.items():
            if not getattr(config, name):
                value = make()
                if value is not None:
                    values[name] = value
        if values:
            Configuration.write([config], values)
        return len(values)

    @classmethod
    def _setup_accounts(cls, company) -> int:
        "Vending journal and accounts of the configuration; returns how many set"
        makers: dict[str, Callable[[], Any]] = {'vend_journal': cls._journal}
        for name, code in DEMO_ACCOUNT_CODES.items():
            makers[name] = functools.partial(cls._account_id, company, code)
        return cls._fill_configuration(makers)

    @classmethod
    def _journal(cls) -> int:
        "The demo's vending journal, created once"
        Journal = Pool().get('account.journal')
        journals = Journal.search([('code', '=', DEMO_JOURNAL_CODE)], limit=1)
        if journals:
            (journal,) = journals
        else:
            (journal,) = Journal.create(
                [{'name': "Vending", 'code': DEMO_JOURNAL_CODE, 'type': 'revenue'}]
            )
        return journal.id

    @classmethod
    def _account_id(cls, company, code: str) -> int:
        return cls._account(company, code).id

    @classmethod
    def _setup_defaults(cls, company) -> int:
        "Currency and default customer category, where unset; returns how many"
        Category = Pool().get('prepaid.customer.category')

        def default_category() -> int | None:
            categories = Category.search(
                [('code', '=', DEMO_DEFAULT_CATEGORY)], limit=1
            )
            return categories[0].id if categories else None

        return cls._fill_configuration(
            {
                'currency': lambda: company.currency.id,
                'default_customer_category': default_category,
            }
        )

    @classmethod
    def _setup_tariffs(cls, company) -> int:
        "One tariff per demo entry, created once; returns how many created"
        pool = Pool()
        Tariff = pool.get('prepaid.tariff')
        Category = pool.get('prepaid.customer.category')
        Tax = pool.get('account.tax')
        taxes = Tax.search(
            [('company', '=', company.id), ('name', '=', DEMO_VAT_NAME)], limit=1
        )
        if not taxes:
            raise ValueError(
                f'tax {DEMO_VAT_NAME!r} not found: run company.ensure_vat first'
            )
        (tax,) = taxes
        categories = {c.code: c for c in Category.search([])}
        existing = {t.code for t in Tariff.search([('code', 'like', 'DEMO-%')])}
        created = 0
        for code, name, index, category_codes, kind, blocks, charge in DEMO_TARIFFS:
            if code in existing:
                continue
            lower = Decimal(0)
            block_values = []
            for sequence, (upper, price) in enumerate(blocks, 1):
                block_values.append(
                    {
                        'sequence': sequence,
                        'from_kwh': lower,
                        'to_kwh': None if upper is None else Decimal(upper),
                        'price': Decimal(price),
                    }
                )
                lower = Decimal(upper or 0)
            Tariff.create(
                [
                    {
                        'name': name,
                        'code': code,
                        'sts_tariff_index': index,
                        'customer_categories': [
                            (
                                'add',
                                [
                                    categories[c].id
                                    for c in category_codes
                                    if c in categories
                                ],
                            )
                        ],
                        'versions': [
                            (
                                'create',
                                [
                                    {
                                        'start_date': DEMO_TARIFF_START,
                                        'kind': kind,
                                        'prices_include_vat': False,
                                        'tax': tax.id,
                                        'blocks': [('create', block_values)],
                                        'charges': [
                                            (
                                                'create',
                                                [
                                                    {
                                                        'name': "Service charge",
                                                        'period': 'monthly',
                                                        'amount': Decimal(charge),
                                                    }
                                                ],
                                            )
                                        ],
                                    }
                                ],
                            )
                        ],
                    }
                ]
            )
            created += 1
        return created

    @classmethod
    def _setup_sales_point(cls):
        pool = Pool()
        SalesPoint = pool.get('prepaid.sales_point')
        code, name = DEMO_SALES_POINT
        points = SalesPoint.search(
            [('code', '=', code), ('active', 'in', [True, False])], limit=1
        )
        if points:
            return points[0]
        (point,) = SalesPoint.create(
            [
                {
                    'name': name,
                    'code': code,
                    'kind': 'office',
                    'channel': 'counter',
                    'address': f'Civic Centre, Landdros Mare Street, {CITY}',
                    'receipt_header': "Head Office cash desk",
                    'receipt_footer': "DEMO: tokens for simulated meters only",
                }
            ]
        )
        return point

    @classmethod
    def _setup_admin(cls) -> bool:
        "Put admin in the Cashier group (a shift is needed to sell)"
        pool = Pool()
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        cashier = ModelData.get_id('prepaid_vending', 'group_cashier')
        admins = User.search([('login', '=', 'admin')], limit=1)
        if not admins:
            return False
        (admin,) = admins
        if cashier not in {g.id for g in admin.groups}:
            User.write([admin], {'groups': [('add', [cashier])]})
        return True

    @classmethod
    def create_network(cls, rng: random.Random) -> tuple[list, list]:
        """Substations, feeders and transformers, with a check meter installed
        at each transformer on a service point without customer."""
        pool = Pool()
        Substation = pool.get('prepaid.substation')
        Feeder = pool.get('prepaid.feeder')
        Transformer = pool.get('prepaid.transformer')
        Meter = pool.get('prepaid.meter')
        ServicePoint = pool.get('prepaid.service_point')
        Installation = pool.get('prepaid.meter.installation')
        lat0, lon0 = CITY_GPS
        substations = Substation.create(
            [
                {
                    'code': code,
                    'name': f'{CITY} {name} Substation',
                    'voltage_kv': Decimal('66'),
                    'latitude': round(lat0 + dlat, 6),
                    'longitude': round(lon0 + dlon, 6),
                }
                for code, name, dlat, dlon in [
                    (SUBSTATION_CODES[0], 'North', 0.03, -0.01),
                    (SUBSTATION_CODES[1], 'South', -0.025, 0.02),
                ]
            ]
        )
        feeders = Feeder.create(
            [
                {
                    'code': f'FD-{s + 1}{f + 1}',
                    'name': f'{substation.name[:-11]} Feeder {f + 1} (11 kV)',
                    'substation': substation.id,
                }
                for s, substation in enumerate(substations)
                for f in range(FEEDERS_PER_SUBSTATION)
            ]
        )
        transformer_values = []
        for index in range(len(feeders) * TRANSFORMERS_PER_FEEDER):
            feeder = feeders[index // TRANSFORMERS_PER_FEEDER]
            kva = rng.choice((100, 200, 200, 315, 315, 500))
            transformer_values.append(
                {
                    'code': f'TX-{index + 1:04d}',
                    'name': f'{rng.choice(SUBURBS)} {kva} kVA',
                    'feeder': feeder.id,
                    'rated_kva': Decimal(kva),
                    'location': f'{rng.choice(STREETS)} {rng.choice(STREET_KINDS)}',
                    'latitude': round(lat0 + rng.uniform(-0.04, 0.04), 6),
                    'longitude': round(lon0 + rng.uniform(-0.04, 0.04), 6),
                }
            )
        transformers = Transformer.create(transformer_values)
        masters = Meter.create(
            [
                {
                    'serial': f'CHK{t.code[3:]}-{rng.randrange(10**5):05d}',
                    'manufacturer': 'Landis+Gyr',
                    'model': 'E650',
                    'kind': 'postpaid',
                    'payment_mode': 'postpaid',
                    'phases': '3',
                    'ct_ratio': KVA_CT[int(t.rated_kva)],
                    'role': 'master',
                    'master_of_transformer': t.id,
                }
                for t in transformers
            ]
        )
        points = ServicePoint.create(
            [
                {
                    'street': f'{t.location} (transformer {t.code})',
                    'city': CITY,
                    'postal_code': POSTAL_CODE,
                    'latitude': t.latitude,
                    'longitude': t.longitude,
                    'transformer': t.id,
                }
                for t in transformers
            ]
        )
        Installation.create(
            [
                {
                    'meter': m.id,
                    'service_point': p.id,
                    'installed_on': dt.date(2014, 6, 1),
                    'install_reading': Decimal(0),
                }
                for m, p in zip(masters, points)
            ]
        )
        Meter.change_state(masters, 'installed', 'Demo data')
        return transformers, masters

    @classmethod
    def customer_rows(
        cls, rng: random.Random, count: int, transformers: list, serials: set[str]
    ) -> list[dict[str, Any]]:
        "One importer row (column name -> value) per demo customer"
        Lang = Pool().get('ir.lang')
        languages = sorted(
            lang.code for lang in Lang.search([('code', 'in', ['fr', 'pt'])])
        )
        ids: set[str] = set()
        rows = []
        for index in range(count):
            category = rng.choices(
                [c for c, _ in CATEGORIES], weights=[w for _, w in CATEGORIES]
            )[0]
            transformer = rng.choice(transformers)
            row: dict[str, Any] = {
                'category': category,
                'transformer_code': transformer.code,
                'street': (
                    f'{rng.randrange(1, 400)} {rng.choice(STREETS)} '
                    f'{rng.choice(STREET_KINDS)}, {rng.choice(SUBURBS)}'
                ),
                'city': CITY,
                'postal_code': POSTAL_CODE,
                'latitude': round(transformer.latitude + rng.uniform(-0.004, 0.004), 6),
                'longitude': round(
                    transformer.longitude + rng.uniform(-0.004, 0.004), 6
                ),
                'phone': (
                    f'+27 {rng.choice("678")}{rng.randrange(10)} '
                    f'{rng.randrange(1000):03d} {rng.randrange(10000):04d}'
                ),
                'language': (
                    rng.choice(languages) if languages and rng.random() < 0.1 else 'en'
                ),
            }
            last = rng.choice(LAST_NAMES)
            if category == 'RESIDENTIAL':
                first = rng.choice(FIRST_NAMES)
                row['customer_name'] = f'{first} {last}'
                row['national_id'] = cls._unique(
                    ids,
                    lambda: (
                        f'{rng.randrange(40, 100):02d}{rng.randrange(1, 13):02d}'
                        f'{rng.randrange(1, 29):02d}{rng.randrange(10**7):07d}'
                    ),
                )
                if rng.random() < 0.4:
                    row['email'] = (
                        f'{first}.{last}{index}'.lower().replace(' ', '')
                        + '@example.com'
                    )
            else:
                if category == 'COMMERCIAL':
                    name = f'{last} {rng.choice(BUSINESS_KINDS)}'
                elif category == 'INDUSTRIAL':
                    name = f'{CITY} {rng.choice(INDUSTRY_KINDS)} ({last})'
                else:
                    name = f'{rng.choice(SUBURBS)} {rng.choice(GOVERNMENT)}'
                row['customer_name'] = f'{name} #{index + 1}'
                row['registration_number'] = cls._unique(
                    ids,
                    lambda: (
                        f'{rng.randrange(1995, 2024)}/{rng.randrange(10**6):06d}/07'
                    ),
                )
                row['email'] = f'accounts{index}@example.com'
            kind = rng.choices(
                [k for k, _ in METER_KIND_WEIGHTS],
                weights=[w for _, w in METER_KIND_WEIGHTS],
            )[0]
            if category == 'GOVERNMENT' and kind == 'sts_keypad':
                kind = 'postpaid'  # public buildings are often on credit
            manufacturer, model, _ = rng.choice(
                [m for m in METER_MODELS if m[2] == kind]
            )
            three_phase = (
                category in THREE_PHASE_CATEGORIES
                or (category == 'COMMERCIAL' and rng.random() < 0.6)
                or rng.random() < 0.05
            )
            row.update(
                {
                    'meter_serial': cls._unique(
                        serials,
                        lambda: (lambda body: body + luhn_digit(body))(
                            f'0{rng.randrange(10**9):09d}'
                        ),
                    ),
                    'meter_kind': kind,
                    'manufacturer': manufacturer,
                    'model': model,
                    'phases': 3 if three_phase else 1,
                    'ct_ratio': (
                        rng.choice((20, 40)) if category == 'INDUSTRIAL' else 1
                    ),
                    'rated_current': 100 if three_phase else 60,
                    'installed_on': dt.date(2015, 1, 1)
                    + dt.timedelta(days=rng.randrange(3650)),
                    'install_reading': 0,
                }
            )
            rows.append(row)
        return rows

    @staticmethod
    def _unique(seen: set[str], make) -> str:
        while True:
            value = make()
            if value not in seen:
                seen.add(value)
                return value
