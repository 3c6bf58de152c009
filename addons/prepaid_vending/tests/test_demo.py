"""Demo data generator: counts, structure, determinism and idempotence, and
the sales set-up that lets staff sell on the demo utility.

The expectations come from the generator's parameters (its constants and the
size asked for), not from what one seed happened to produce."""

import datetime as dt
import math
import unittest
from collections import Counter
from decimal import Decimal as D

from trytond.modules.company.tests import create_company, set_company
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, drop_db, with_transaction
from trytond.transaction import Transaction

from prepaid_demo.vending import (
    CATEGORIES,
    DEMO_ACCOUNT_CODES,
    DEMO_SALES_POINT,
    DEMO_TARIFFS,
    FEEDERS_PER_SUBSTATION,
    KVA_CT,
    METER_KIND_WEIGHTS,
    METER_MODELS,
    SUBSTATION_CODES,
    THREE_PHASE_CATEGORIES,
    TRANSFORMERS_PER_FEEDER,
    create_demo_data,
    luhn_digit,
    setup_demo_vending,
)

from .tools import with_company
from .vend_fixtures import setup_accounting


def _expected_shares() -> tuple[dict[str, float], dict[str, float]]:
    """(category -> share, meter kind -> share) of the customers, from the
    generator's weights: a government building drawn a keypad meter gets a
    postpaid one."""
    categories = dict(CATEGORIES)
    total = sum(w for _, w in METER_KIND_WEIGHTS)
    kinds = {k: w / total for k, w in METER_KIND_WEIGHTS}
    moved = categories['GOVERNMENT'] * kinds['sts_keypad']
    kinds['sts_keypad'] -= moved
    kinds['postpaid'] += moved
    return categories, kinds


def _within(count: int, size: int, share: float, sigmas: float = 4) -> bool:
    "count is a plausible draw of size trials with probability share"
    spread = sigmas * math.sqrt(size * share * (1 - share))
    return abs(count - size * share) <= spread


def _snapshot() -> list[tuple]:
    Meter = Pool().get('prepaid.meter')
    return [
        (
            m.serial,
            m.kind,
            m.phases,
            m.manufacturer,
            m.customer.name if m.customer else None,
            m.customer.national_id if m.customer else None,
            m.installations[0].installed_on,
        )
        for m in Meter.search([], order=[('serial', 'ASC')])
    ]


class DemoTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A scenario run earlier in the session leaves its committed data in
        # the shared test database: start from the clean cached one.
        drop_db()
        activate_module('prepaid_vending')

    def test_luhn_digit(self):
        # Worked example of the Luhn algorithm (ISO/IEC 7812-1 annex B,
        # also the Wikipedia "Luhn algorithm" article): 7992739871 -> 3.
        self.assertEqual(luhn_digit('7992739871'), '3')
        self.assertEqual(luhn_digit('0000000000'), '0')

    @with_company
    def test_counts_and_structure(self):
        "The counts returned are what is in the database, for any size asked"
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Party = pool.get('party.party')
        Substation = pool.get('prepaid.substation')
        Feeder = pool.get('prepaid.feeder')
        Transformer = pool.get('prepaid.transformer')
        ServicePoint = pool.get('prepaid.service_point')
        customers = 20

        result = create_demo_data(seed=1, customers=customers)

        self.assertTrue(result['created'])
        substations = Substation.search([('code', 'in', SUBSTATION_CODES)])
        self.assertEqual(result['substations'], len(SUBSTATION_CODES))
        self.assertEqual(len(substations), len(SUBSTATION_CODES))
        feeders = Feeder.search([])
        self.assertEqual(result['feeders'], len(feeders))
        self.assertEqual(len(feeders), len(substations) * FEEDERS_PER_SUBSTATION)
        for substation in substations:
            self.assertEqual(len(substation.feeders), FEEDERS_PER_SUBSTATION)
        transformers = Transformer.search([])
        self.assertEqual(result['transformers'], len(transformers))
        self.assertEqual(len(transformers), len(feeders) * TRANSFORMERS_PER_FEEDER)
        for feeder in feeders:
            self.assertEqual(
                Transformer.search_count([('feeder', '=', feeder.id)]),
                TRANSFORMERS_PER_FEEDER,
            )
        for transformer in transformers:
            self.assertIn(transformer.feeder.substation, substations)
            self.assertIn(int(transformer.rated_kva), KVA_CT)
        # One check meter per transformer, its CT sized for the transformer;
        # one meter per customer, each meter on a service point of its own.
        masters = Meter.search([('role', '=', 'master')])
        self.assertEqual(result['master_meters'], len(transformers))
        self.assertEqual({m.master_of_transformer for m in masters}, set(transformers))
        for master in masters:
            self.assertEqual(
                master.ct_ratio, KVA_CT[int(master.master_of_transformer.rated_kva)]
            )
            self.assertEqual(master.state, 'installed')
        self.assertEqual(result['customers'], customers)
        parties = Party.search([('customer_number', '!=', None)])
        self.assertEqual(len(parties), customers)
        self.assertEqual(result['service_points'], customers + len(transformers))
        self.assertEqual(ServicePoint.search_count([]), result['service_points'])
        meters = Meter.search([])
        self.assertEqual(result['meters'], customers + len(transformers))
        self.assertEqual(sorted(result['meter_ids']), sorted(m.id for m in meters))
        self.assertEqual(len({m.service_point for m in meters}), len(meters))
        customers_meters = Meter.search([('role', '=', 'customer')])
        # Every customer has exactly one meter, on a point of their own.
        self.assertEqual(
            sorted(m.customer.id for m in customers_meters),
            sorted(p.id for p in parties),
        )
        for meter in customers_meters:
            # Each customer meter hangs below the check meter of its
            # transformer, and is installed (with a history line).
            self.assertEqual(
                meter.master.master_of_transformer, meter.service_point.transformer
            )
            self.assertEqual(meter.state, 'installed')
            self.assertEqual(len(meter.state_history), 1)
            self.assertEqual(meter.serial[-1], luhn_digit(meter.serial[:-1]))
            self.assertTrue(meter.customer.contact_mechanisms)
            self.assertTrue(meter.customer.customer_category)
            # Its kind, make and model are among those the generator knows.
            category = meter.customer.customer_category.code
            self.assertIn(category, dict(CATEGORIES))
            self.assertIn(
                (meter.manufacturer, meter.model, meter.kind), set(METER_MODELS)
            )
            if category == 'GOVERNMENT':
                self.assertNotEqual(meter.kind, 'sts_keypad')
            if category in THREE_PHASE_CATEGORIES:
                self.assertEqual(meter.phases, '3')

    @with_company
    def test_proportions_default_size(self):
        "The default size follows the generator's shares of categories and kinds"
        Meter = Pool().get('prepaid.meter')
        result = create_demo_data()
        size = result['customers']
        meters = Meter.search([('role', '=', 'customer')])
        self.assertEqual(len(meters), size)
        kinds = Counter(m.kind for m in meters)
        categories = Counter(m.customer.customer_category.code for m in meters)
        category_shares, kind_shares = _expected_shares()
        self.assertLessEqual(set(categories), set(category_shares))
        self.assertLessEqual(set(kinds), set(kind_shares))
        for code, share in category_shares.items():
            self.assertTrue(_within(categories[code], size, share), (code, categories))
        for kind, share in kind_shares.items():
            self.assertTrue(_within(kinds[kind], size, share), (kind, kinds))

    def test_proportion_check_can_fail(self):
        "The bounds of the proportion test refuse an implausible count"
        self.assertTrue(_within(170, 200, 0.85))
        self.assertFalse(_within(120, 200, 0.85))
        self.assertFalse(_within(0, 200, 0.2))
        _, kinds = _expected_shares()
        self.assertAlmostEqual(sum(kinds.values()), 1)
        self.assertLess(kinds['sts_keypad'], 0.75)

    @with_transaction()
    def test_deterministic_and_idempotent(self):
        def create(seed, customers):
            # A new utility after each rollback (the demo data is a company's).
            with set_company(create_company()):
                return create_demo_data(seed=seed, customers=customers)

        first = create(seed=42, customers=10)
        snapshot = _snapshot()
        # A second call finds the demo substations and does nothing.
        self.assertEqual(create(seed=42, customers=10), {'created': False})
        self.assertEqual(_snapshot(), snapshot)
        Transaction().rollback()
        second = create(seed=42, customers=10)
        self.assertEqual(_snapshot(), snapshot)
        self.assertEqual(
            {k: v for k, v in first.items() if k != 'meter_ids'},
            {k: v for k, v in second.items() if k != 'meter_ids'},
        )
        Transaction().rollback()
        create(seed=43, customers=10)
        self.assertNotEqual(_snapshot(), snapshot)


class DemoVendingTestCase(unittest.TestCase):
    "setup_demo_vending: the demo utility can sell out of the box"

    @classmethod
    def setUpClass(cls):
        drop_db()
        activate_module('prepaid_vending')

    @with_transaction()
    def test_needs_company(self):
        "Without a company there are no books to sell into: a clear error"
        Tariff = Pool().get('prepaid.tariff')
        # Its network and meters are a utility's too (company.py).
        with self.assertRaises(ValueError) as cm:
            create_demo_data(seed=1, customers=5)
        self.assertIn('company', str(cm.exception))
        with self.assertRaises(ValueError) as cm:
            setup_demo_vending(seed=1)
        self.assertIn('company', str(cm.exception))
        self.assertEqual(Tariff.search_count([]), 0)

    @with_transaction()
    def test_system_defaults_chosen_are_kept(self):
        "The set-up fills empty system parameters only"
        pool = Pool()
        Configuration = pool.get('prepaid.configuration')
        Category = pool.get('prepaid.customer.category')
        company = create_company()
        with set_company(company):
            setup_accounting(company)
            create_demo_data(seed=1, customers=5)
            (commercial,) = Category.search([('code', '=', 'COMMERCIAL')])
            Configuration.write(
                [Configuration(1)], {'default_customer_category': commercial.id}
            )
            counts = setup_demo_vending(seed=1)
            self.assertEqual(counts['system_defaults_set'], 1)  # the currency
            config = Configuration(1)
            self.assertEqual(config.default_customer_category, commercial)
            self.assertEqual(config.currency, company.currency)

    @with_transaction()
    def test_sell_on_demo(self):
        "Tariffs per category, accounts, sales point, admin sells in a shift"
        pool = Pool()
        Tariff = pool.get('prepaid.tariff')
        Meter = pool.get('prepaid.meter')
        SalesPoint = pool.get('prepaid.sales_point')
        Session = pool.get('prepaid.cashier.session')
        Vend = pool.get('prepaid.vend')
        Command = pool.get('prepaid.meter.command')
        Configuration = pool.get('prepaid.configuration')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        company = create_company()
        with set_company(company):
            setup_accounting(company)
            create_demo_data(seed=1, customers=40)
            counts = setup_demo_vending(seed=1)
            self.assertEqual(counts['tariffs_created'], len(DEMO_TARIFFS))
            self.assertEqual(counts['sales_point'], DEMO_SALES_POINT[0])

            # Every customer meter finds its tariff through its category.
            today = dt.date.today()
            meters = Meter.search([('role', '=', 'customer')])
            tariffs = {m.id: Tariff.for_meter(m, today) for m in meters}
            for meter in meters:
                category = meter.customer.customer_category
                self.assertIn(category, tariffs[meter.id].customer_categories)
            # Each demo tariff as its entry describes it: contiguous blocks
            # from 0 kWh, the monthly charge, the categories, excl. 15 % VAT.
            for code, _, index, category_codes, kind, blocks, charge in DEMO_TARIFFS:
                (tariff,) = Tariff.search([('code', '=', code)])
                self.assertEqual(tariff.sts_tariff_index, index)
                self.assertEqual(
                    {c.code for c in tariff.customer_categories}, set(category_codes)
                )
                version = tariff.version_at(today)
                self.assertEqual(version.kind, kind)
                self.assertFalse(version.prices_include_vat)
                self.assertEqual(version.tax.rate, D('0.15'))
                uppers = [None if u is None else D(u) for u, _ in blocks]
                self.assertEqual(
                    [(b.from_kwh, b.to_kwh, b.price) for b in version.blocks],
                    [
                        (lower, upper, D(price))
                        for lower, upper, (_, price) in zip(
                            [D(0)] + uppers[:-1], uppers, blocks
                        )
                    ],
                )
                self.assertEqual(
                    [(c.period, c.amount) for c in version.charges],
                    [('monthly', D(charge))],
                )
            (residential,) = Tariff.search([('code', '=', 'DEMO-RES')])
            # docs/vending.md Example C: inclining blocks, as the vend below
            # expects.
            self.assertEqual(residential.version_at(today).kind, 'step')
            config = Configuration(1)
            for name in DEMO_ACCOUNT_CODES:
                self.assertTrue(getattr(config, name), name)
            self.assertTrue(config.vend_journal)
            # System parameters: the company's currency, households by default.
            self.assertEqual(counts['system_defaults_set'], 2)
            self.assertEqual(config.currency, company.currency)
            self.assertEqual(config.default_customer_category.code, 'RESIDENTIAL')

            # admin (user 1) may open a shift under the access rules.
            cashier = ModelData.get_id('prepaid_vending', 'group_cashier')
            self.assertIn(cashier, [g.id for g in User(1).groups])
            (head_office,) = SalesPoint.search([('code', '=', DEMO_SALES_POINT[0])])
            with Transaction().set_context(_check_access=True):
                Session.create([{'sales_point': head_office.id}])

            # A smart prepaid residential meter: credit goes to the head-end.
            smart = [
                m
                for m in meters
                if m.kind == 'smart_prepaid'
                and m.payment_mode == 'prepaid'
                and tariffs[m.id] == residential
            ]
            self.assertTrue(smart)
            vend = Vend.vend(smart[0], D('200.00'), 'cash', head_office, 'demo-1')
            # docs/vending.md Example C pipeline: R57.50 service charge incl. VAT,
            # R142.50 energy = 123.91 + VAT; 50 kWh @ 1.20 + 63.91 / 1.60.
            self.assertEqual(vend.units_kwh, D('89.9'))
            self.assertEqual(vend.vat_amount, D('26.09'))
            Vend.book_pending()  # as the queued task does after the commit
            self.assertTrue(Vend(vend.id).move)
            self.assertEqual(
                Command.search_count(
                    [('meter', '=', smart[0].id), ('kind', '=', 'remote_credit')]
                ),
                1,
            )

            # Again: nothing is created twice.
            again = setup_demo_vending(seed=1)
            self.assertEqual(again['tariffs_created'], 0)
            self.assertEqual(again['vending_accounts_set'], 0)
            self.assertEqual(again['system_defaults_set'], 0)
            self.assertEqual(Tariff.search_count([]), len(DEMO_TARIFFS))
            self.assertEqual(SalesPoint.search_count([]), 1)
