"""Every list view of the project renders in the sao web client.

sao 8.0 has no list column for datetime/timestamp fields: Tryton lists show
them as two columns with widget="date" and widget="time".  A bare datetime
column breaks the whole list in the browser ("ColumnFactory is not a
constructor") while every server-side test passes, so it is checked here.
"""

import datetime as dt
import unittest

from lxml import etree
from trytond.modules.prepaid_vending.tests.tools import create_meter, with_company
from trytond.pool import Pool
from trytond.pyson import PYSONDecoder
from trytond.tests.test_tryton import activate_module

MODULES = ['prepaid_vending', 'prepaid_sts', 'prepaid_headend', 'prepaid_vendor_portal']
SAO_TREE_WIDGETS = {
    'binary',
    'boolean',
    'callto',
    'char',
    'date',
    'dict',
    'email',
    'float',
    'image',
    'integer',
    'many2many',
    'many2one',
    'numeric',
    'one2many',
    'one2one',
    'progressbar',
    'reference',
    'selection',
    'multiselection',
    'sip',
    'text',
    'time',
    'timedelta',
    'url',
}

#: Integer fields that are identifiers or codes, not quantities.
IDENTIFIERS = {
    'hes_port',
    'port',
    'mqtt_port',
    'hes_client_address',
    'hes_server_address',
    'hes_alarm_register',
    'hes_token_status',
    'sts_last_tid',
    'old_last_tid',
    'tid',
    'sts_krn',
    'krn',
    'old_krn',
    'new_krn',
    'ken',
    'mfr_code',
    'token_class',
    'subclass',
    'code',
}

#: Fields a form may show outside its tabs (a header and the state).
MAX_FLAT_FIELDS = 14


class ViewsTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module(MODULES)

    @with_company
    def test_list_columns_have_a_sao_widget(self):
        pool = Pool()
        View = pool.get('ir.ui.view')
        problems = []
        views = View.search(
            [
                ('module', 'in', MODULES),
                ('type', '=', 'tree'),
                ('inherit', '=', None),
            ]
        )
        for view in views:
            model_name = view.model
            Model = pool.get(model_name)
            arch = Model.fields_view_get(view_id=view.id)['arch']
            for node in etree.fromstring(arch).iter('field'):
                name = node.get('name')
                field = Model._fields.get(name)
                if field is None:
                    continue
                widget = node.get('widget') or field._type
                if widget not in SAO_TREE_WIDGETS:
                    problems.append(f'{model_name}.{name}: {widget}')
        self.maxDiff = None
        self.assertEqual(sorted(set(problems)), [])

    @with_company
    def test_every_button_has_a_label(self):
        "A button without string shows as a blank box in sao"
        pool = Pool()
        View = pool.get('ir.ui.view')
        problems = []
        for view in View.search([('module', 'in', MODULES), ('inherit', '=', None)]):
            if not view.model or view.type not in {'form', 'tree'}:
                continue
            Model = pool.get(view.model)
            arch = Model.fields_view_get(view_id=view.id)['arch']
            for node in etree.fromstring(arch).iter('button'):
                if not (node.get('string') or '').strip():
                    problems.append(f'{view.model}: {node.get("name")}')
        self.assertEqual(sorted(set(problems)), [])

    @with_company
    def test_keypad_meter_buttons_labelled_with_icons(self):
        Meter = Pool().get('prepaid.meter')
        arch = etree.fromstring(Meter.fields_view_get(view_type='form')['arch'])
        buttons = {b.get('name'): b for b in arch.iter('button')}
        for name, string in [
            ('sts_engineering_wizard', "Engineering Token"),
            ('sts_key_change_wizard', "Key Change"),
        ]:
            with self.subTest(button=name):
                self.assertEqual(buttons[name].get('string'), string)
                self.assertTrue(buttons[name].get('icon'))

    @with_company
    def test_load_profile_graph_one_meter_kwh_over_time(self):
        pool = Pool()
        Interval = pool.get('prepaid.headend.interval')
        ModelData = pool.get('ir.model.data')
        Action = pool.get('ir.action.act_window')
        view = Interval.fields_view_get(
            ModelData.get_id('prepaid_headend', 'interval_view_graph')
        )
        arch = etree.fromstring(view['arch'])
        (x,) = arch.xpath('/graph/x/field')
        (y,) = arch.xpath('/graph/y/field')
        # sao draws a time axis for datetime fields, not for timestamps.
        self.assertEqual(view['fields'][x.get('name')]['type'], 'datetime')
        self.assertIn('(kWh)', view['fields'][y.get('name')]['string'])

        # The graph opens only from one meter: the menu's action adds up
        # nothing.
        def views(xml_id):
            action = Action(ModelData.get_id('prepaid_headend', xml_id))
            return {v.view.type for v in action.act_window_views}, action.domain

        menu_views, _ = views('act_interval')
        self.assertNotIn('graph', menu_views)
        meter_views, domain = views('act_interval__meter')
        self.assertIn('graph', meter_views)
        self.assertIn("active_id", domain)

    @with_company
    def test_register_graph_one_line_per_quantity(self):
        Register = Pool().get('prepaid.headend.register')
        arch = etree.fromstring(Register.fields_view_get(view_type='graph')['arch'])
        series = arch.xpath('/graph/y/field')
        self.assertGreater(len(series), 1)
        for field in series:
            with self.subTest(series=field.get('key')):
                self.assertIn('"obis"', field.get('domain') or '')
                self.assertIn('(', field.get('string'))

    @with_company
    def test_interval_energy_in_kwh(self):
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Interval = pool.get('prepaid.headend.interval')
        meter = Meter(serial='GRAPH1', kind='smart_prepaid')
        meter.save()
        start = dt.datetime(2026, 1, 1, 0, 15)
        rows = [('Wh', 250.0), ('kWh', 0.5), ('Wh', None), ('V', 3.0)]
        intervals = Interval.create(
            [
                {
                    'meter': meter.id,
                    'obis': f'1.0.1.8.{i}.255',
                    'timestamp': start,
                    'unit': unit,
                    'consumption': consumption,
                }
                for i, (unit, consumption) in enumerate(rows)
            ]
        )
        self.assertEqual([i.energy_kwh for i in intervals], [0.25, 0.5, None, None])
        self.assertEqual(intervals[0].capture_time, start)

    @with_company
    def test_identifier_numbers_without_thousands_separators(self):
        "A port, TID or key revision reads 4073, not 4,073"
        pool = Pool()
        View = pool.get('ir.ui.view')
        problems = []
        seen = set()
        for view in View.search([('module', 'in', MODULES), ('inherit', '=', None)]):
            if not view.model or view.type not in {'form', 'tree'}:
                continue
            Model = pool.get(view.model)
            arch = Model.fields_view_get(view_id=view.id)['arch']
            for node in etree.fromstring(arch).iter('field'):
                name = node.get('name')
                field = Model._fields.get(name)
                if name not in IDENTIFIERS or field is None:
                    continue
                if field._type != 'integer':
                    continue
                seen.add(name)
                if node.get('grouping') != '0':
                    problems.append(f'{view.model}.{name} ({view.name})')
        self.assertEqual(sorted(set(problems)), [])
        self.assertIn('hes_port', seen)
        self.assertIn('sts_last_tid', seen)

    @with_company
    def test_customer_shows_one_number(self):
        "A customer shows its Customer Number, not also the party Code"
        pool = Pool()
        Party = pool.get('party.party')
        ModelData = pool.get('ir.model.data')
        Action = pool.get('ir.action.act_window')
        view = Party.fields_view_get(view_type='form')
        form = etree.fromstring(view['arch'])
        (label,) = form.xpath('//label[@name="code"]')
        for states in [label.get('states'), view['fields']['code']['states']]:
            self.assertIn('invisible', states)
            self.assertIn('customer_number', states)
        tree = etree.fromstring(Party.fields_view_get(view_type='tree')['arch'])
        (code,) = tree.xpath('/tree/field[@name="code"]')
        self.assertIn('prepaid_customers', code.get('tree_invisible') or '')
        self.assertTrue(tree.xpath('/tree/field[@name="customer_number"]'))
        action = Action(ModelData.get_id('prepaid_vending', 'act_customer'))
        self.assertIn('prepaid_customers', action.context)

    @with_company
    def test_long_forms_in_tabs(self):
        """No form of the project shows more than MAX_FLAT_FIELDS fields
        outside its tabs (the vend form had 29 in one column)"""
        pool = Pool()
        View = pool.get('ir.ui.view')
        problems = []
        views = View.search(
            [('module', 'in', MODULES), ('type', '=', 'form'), ('inherit', '=', None)]
        )
        for view in views:
            Model = pool.get(view.model)
            arch = etree.fromstring(Model.fields_view_get(view_id=view.id)['arch'])
            flat = [
                node.get('name')
                for node in arch.iter('field')
                if not any(a.tag == 'notebook' for a in node.iterancestors())
            ]
            if len(flat) > MAX_FLAT_FIELDS:
                problems.append(f'{view.model} ({view.name}): {len(flat)}')
        self.assertEqual(sorted(problems), [])

    @with_company
    def test_list_tabs_filter_on_real_values(self):
        """Every tab (action domain) of the project's lists searches its
        model, filters on values the field has, and each list with tabs ends
        with All"""
        pool = Pool()
        Domain = pool.get('ir.action.act_window.domain')
        ModelData = pool.get('ir.model.data')
        data = ModelData.search(
            [('module', 'in', MODULES), ('model', '=', 'ir.action.act_window.domain')]
        )
        tabs = Domain.browse([d.db_id for d in data])
        self.assertTrue(tabs)
        by_action = {}
        for tab in tabs:
            by_action.setdefault(tab.act_window, []).append(tab)
        decoder = PYSONDecoder({'_user': 1})
        for action, action_tabs in by_action.items():
            Model = pool.get(action.res_model)
            action_tabs.sort(key=lambda t: t.sequence)
            with self.subTest(action=action.name):
                self.assertEqual(action_tabs[-1].name, 'All')
                self.assertEqual(decoder.decode(action_tabs[-1].domain or '[]'), [])
                for tab in action_tabs:
                    domain = decoder.decode(tab.domain or '[]')
                    Model.search(domain)
                    for name, _, value in domain:
                        field = Model._fields[name]
                        if field._type != 'selection':
                            continue
                        keys = {k for k, _ in field.selection}
                        values = value if isinstance(value, list) else [value]
                        self.assertLessEqual(set(values), keys, tab.name)

    @with_company
    def test_meter_tabs_split_meters_by_state(self):
        "A meter is in the tab of its state and in All, in no other"
        pool = Pool()
        Meter = pool.get('prepaid.meter')
        Domain = pool.get('ir.action.act_window.domain')
        ModelData = pool.get('ir.model.data')
        action = ModelData.get_id('prepaid_vending', 'act_meter')
        meters = [create_meter('04100001001'), create_meter('04100001002')]
        Meter.write([meters[1]], {'state': 'faulty'})
        decoder = PYSONDecoder({})
        found = {}
        for tab in Domain.search([('act_window', '=', action)]):
            domain = decoder.decode(tab.domain or '[]')
            ours = [('id', 'in', [m.id for m in meters])]
            found[tab.name] = set(Meter.search(ours + domain))
        self.assertEqual(found['In Stock'], {meters[0]})
        self.assertEqual(found['Faulty'], {meters[1]})
        self.assertEqual(found['Installed'], set())
        self.assertEqual(found['All'], set(meters))
