"""Installation-wide access checks, run by each module's tests on what it
activates: every wizard, report and button refuses a user outside its groups (with
and without a forged ``action_id``), a user with no group reads no model of
the project, and no hidden field can be searched or ordered by.

The wizards, buttons, models and hidden fields are enumerated from the pool
and the database, so a new one is covered without changing these tests.
Calls go through the checks of the RPC path: ``_check_access`` set, a real
user with real groups, ``Wizard.create``/``execute`` and the button methods.
"""

from trytond.model import ModelSingleton, ModelStorage, ModelView, fields
from trytond.model.exceptions import AccessError
from trytond.model.modelview import AccessButtonError
from trytond.modules.prepaid_vending.access import HIDDEN_FIELDS, SearchGuard
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .staff import acting_as, create_user

PROJECT_MODULES = ('prepaid_vending', 'prepaid_sts', 'prepaid_headend')
FORGED_ACTION_ID = 999999


def has_search_guard(Model) -> bool:
    """Whether the pool's class of a model has SearchGuard among its bases.
    By qualified name, not identity: a pool built after the access module
    was imported again (seen in the full PostgreSQL run) holds another
    class object of the same SearchGuard."""
    return any(
        f'{base.__module__}.{base.__qualname__}'
        == f'{SearchGuard.__module__}.{SearchGuard.__qualname__}'
        for base in Model.__mro__
    )


def groups_outside(excluded):
    """All the groups whose membership grants none of the excluded ones (a
    member of a group is a member of its parents too)"""
    outside = []
    for group in Pool().get('res.group').search([]):
        implied, parent = set(), group
        while parent:
            implied.add(parent.id)
            parent = parent.parent
        if not implied & set(excluded):
            outside.append(group)
    return outside


def forged_contexts(ActionWizard, wizard_name):
    "No action_id, an unknown one, and an open action of another wizard"
    contexts = [{}, {'action_id': FORGED_ACTION_ID}]
    others = ActionWizard.search([('wiz_name', '!=', wizard_name)])
    open_actions = [a for a in others if not a.groups]
    if open_actions:
        contexts.append({'action_id': open_actions[0].id})
    return contexts


def restricted_wizards():
    "{wizard name: (union of its actions' groups)} of group-restricted wizards"
    ActionWizard = Pool().get('ir.action.wizard')
    wizards = {}
    for action in ActionWizard.search([]):
        wizards.setdefault(action.wiz_name, []).append(action)
    restricted = {}
    for name, actions in wizards.items():
        if all(a.groups for a in actions):
            restricted[name] = {g.id for a in actions for g in a.groups}
    return restricted


class AccessChecks:
    """Mixed into a unittest.TestCase: every check, on the module named by
    ``module`` and what it depends on"""

    module = 'prepaid_vending'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module(cls.module)

    @with_transaction()
    def test_wizards_refuse_outsiders(self):
        self.check_wizards_refuse_outsiders()

    @with_transaction()
    def test_reports_refuse_outsiders(self):
        self.check_reports_refuse_outsiders()

    @with_transaction()
    def test_buttons_refuse_outsiders(self):
        self.check_buttons_refuse_outsiders()

    @with_transaction()
    def test_no_group_reads_nothing(self):
        self.check_no_group_reads_nothing()

    @with_transaction()
    def test_hidden_fields_not_searchable(self):
        self.check_hidden_fields_not_searchable()

    def check_wizards_refuse_outsiders(self):
        pool = Pool()
        ActionWizard = pool.get('ir.action.wizard')
        restricted = restricted_wizards()
        self.assertIn('ir.module.activate_upgrade', restricted)
        for number, (name, wizard_groups) in enumerate(sorted(restricted.items())):
            Wizard = pool.get(name, type='wizard')
            outsider = create_user(
                f'outside_wizard_{number}', *groups_outside(wizard_groups)
            )
            session_id, start, _ = Wizard.create()
            for context in forged_contexts(ActionWizard, name):
                with self.subTest(wizard=name, context=context):
                    with acting_as(outsider, **context):
                        with self.assertRaises(AccessError):
                            Wizard.create()
                        with self.assertRaises(AccessError):
                            Wizard.execute(session_id, {}, start)

    def check_reports_refuse_outsiders(self):
        pool = Pool()
        ActionReport = pool.get('ir.action.report')
        Group = pool.get('res.group')
        ModelData = pool.get('ir.model.data')
        # So that at least one report of the project is group-restricted.
        receipt = ActionReport(
            ModelData.get_id('prepaid_vending', 'report_vend_receipt')
        )
        receipt.groups = [Group(ModelData.get_id('prepaid_vending', 'group_admin'))]
        receipt.save()
        actions = {}
        for action in ActionReport.search([]):
            actions.setdefault(action.report_name, []).append(action)
        open_actions = [a for a in ActionReport.search([]) if not a.groups]
        self.assertTrue(open_actions)
        checked = 0
        for number, (name, report_actions) in enumerate(sorted(actions.items())):
            if not all(a.groups for a in report_actions):
                continue
            report_groups = {g.id for a in report_actions for g in a.groups}
            outsider = create_user(
                f'outside_report_{number}', *groups_outside(report_groups)
            )
            Report = pool.get(name, type='report')
            own, forged = report_actions[0].id, open_actions[0].id
            for data in ({'action_id': own}, {'action_id': forged}):
                with self.subTest(report=name, data=data):
                    with acting_as(outsider):
                        with self.assertRaises(AccessError):
                            Report.execute([], data)
            checked += 1
        self.assertTrue(checked)

    def check_buttons_refuse_outsiders(self):
        pool = Pool()
        Button = pool.get('ir.model.button')
        outsiders = {}
        checked = 0
        for model_name, Model in pool.iterobject():
            if not issubclass(Model, ModelView):
                continue
            for button in sorted(Model._buttons):
                button_groups = Button.get_groups(model_name, button)
                if not button_groups:
                    continue
                key = frozenset(button_groups)
                if key not in outsiders:
                    outsiders[key] = create_user(
                        f'outside_button_{len(outsiders)}',
                        *groups_outside(button_groups),
                    )
                for context in ({}, {'action_id': FORGED_ACTION_ID}):
                    with self.subTest(model=model_name, button=button, **context):
                        with acting_as(outsiders[key], **context):
                            with self.assertRaises((AccessError, AccessButtonError)):
                                getattr(Model, button)([])
                checked += 1
        self.assertTrue(checked)

    def check_no_group_reads_nothing(self):
        pool = Pool()
        IrModel = pool.get('ir.model')
        nobody = create_user('no_group')
        models = IrModel.search([('module', 'in', PROJECT_MODULES)])
        self.assertTrue(models)
        for ir_model in models:
            Model = pool.get(ir_model.name)
            if not issubclass(Model, ModelStorage) or 'search' not in Model.__rpc__:
                continue
            with self.subTest(model=ir_model.name):
                with acting_as(nobody):
                    with self.assertRaises(AccessError):
                        Model.search([])
                    with self.assertRaises(AccessError):
                        Model.read([1], ['id'])

    def check_hidden_fields_not_searchable(self):
        pool = Pool()
        hidden = hidden_fields()
        self.assertIn(('res.user', 'password_hash'), hidden)
        for number, ((model_name, field), readers) in enumerate(sorted(hidden.items())):
            Model = pool.get(model_name)
            user = create_user(f'hidden_{number}', *groups_outside(readers))
            with self.subTest(model=model_name, field=field):
                self.assertTrue(
                    has_search_guard(Model),
                    f'{model_name} has hidden fields but no SearchGuard',
                )
                if issubclass(Model, ModelSingleton) and not Model.get_singleton():
                    # Without a record, a singleton reads its defaults only.
                    Model.create([{}])
                with acting_as(user):
                    Model.search([], limit=1)  # the model itself is readable
                    for method, args, kwargs in (
                        ('search', [[(field, '!=', None)]], {}),
                        ('search_count', [[(field, '=', None)]], {}),
                        ('search', [[]], {'order': [(field, 'ASC')]}),
                    ):
                        with self.assertRaises(AccessError):
                            getattr(Model, method)(*args, **kwargs)
                    if field in HIDDEN_FIELDS.get(model_name, ()):
                        # Read as None, so that clients reading all fields work.
                        (values,) = Model.read(
                            [Model.search([], limit=1)[0].id], [field]
                        )
                        self.assertIsNone(values[field])
                    else:
                        with self.assertRaises(AccessError):
                            Model.read([1], [field])

                    for Source, relation in relations_to(model_name):
                        with self.assertRaises(AccessError):
                            Source.search([(relation, 'where', [(field, '!=', None)])])
                        with self.assertRaises(AccessError):
                            Source.search([(f'{relation}.{field}', '!=', None)])
                        with self.assertRaises(AccessError):
                            Source.search([], order=[(f'{relation}.{field}', 'ASC')])


def hidden_fields():
    """{(model, field): ids of the groups that may read it} for the fields
    nobody reads by default: HIDDEN_FIELDS and field access denying read"""
    FieldAccess = Pool().get('ir.model.field.access')
    hidden = {
        key: set()
        for key in (
            (model, field) for model, names in HIDDEN_FIELDS.items() for field in names
        )
    }
    accesses = FieldAccess.search([])
    # As FieldAccess.get_access: one row granting read is enough.
    default_read = {}
    for access in accesses:
        if access.group is None:
            key = (access.model, access.field)
            default_read[key] = default_read.get(key, False) or access.perm_read
    for key, readable in default_read.items():
        if not readable:
            hidden[key] = set()
    for access in accesses:
        key = (access.model, access.field)
        if access.group and access.perm_read and key in hidden:
            hidden[key].add(access.group.id)
    return hidden


def relations_to(model_name):
    "One Many2One to the model from a model of its module, or create_uid"
    pool = Pool()
    if model_name == 'res.user':
        return [(pool.get('res.group'), 'create_uid')]
    for _, Model in pool.iterobject():
        if not issubclass(Model, ModelStorage) or Model.__name__ == model_name:
            continue
        for name, field in Model._fields.items():
            searchable = not isinstance(field, fields.Function) or field.searcher
            if (
                field._type == 'many2one'
                and field.model_name == model_name
                and searchable
            ):
                return [(Model, name)]
    return []
