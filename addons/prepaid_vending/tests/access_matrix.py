"""The access every staff role has to every model of the project, written
down (issue 12 §4): the safety net of the access records' consolidation.

The access records were consolidated (the Vending Manager inherits the
Vending Operator through ``res.group.parent``; lines, tokens, calendar days,
tariff blocks... take their parent's access through ``__access__``).  Tryton
computes a user's access from the records of the user's groups and of their
parents, on the model and on the models of its ``__access__``, keeping the
widest right.  The tables below are what every role had before the
consolidation (computed from the records as they were), so a record removed
or a parent added that widens or narrows any role fails here.

A change of access is made here too, on purpose: a new model of the project
with access records must be added to the table (the failure prints its row).
"""

from __future__ import annotations

import itertools

from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from .access_checks import PROJECT_MODULES
from .staff import STAFF_ROLES, acting_as, create_user

#: The columns of the tables: no group, each staff role alone, the API
#: terminal (a service login).
ROLES = ('nobody', *STAFF_ROLES, 'api_terminal')
PERMS = ('read', 'write', 'create', 'delete')

#: Effective model access: r, w, c, d or '-' for read, write, create, delete.
#: Read-only logs may show a write right here (their parent's, through
#: ``__access__``): append_only.py refuses them whatever the access says.
MODEL_ACCESS = """
model                                    -    op   ca   en   kc   ma   ac   ad   api
party.address                            ---- rwcd r--- r--- r--- rwcd r--- rwcd ----
party.contact_mechanism                  ---- rwcd r--- r--- r--- rwcd r--- rwcd ----
party.identifier                         ---- rwcd r--- r--- r--- rwcd r--- rwcd ----
party.party                              ---- rwcd r--- r--- r--- rwcd r--- rwcd ----
prepaid.cashier.session                  ---- ---- rwc- ---- ---- rw-- r--- r--- ----
prepaid.cashier.session.count            ---- ---- rwc- ---- ---- rw-- r--- r--- ----
prepaid.concentrator                     ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.concentrator.collector           ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.concentrator.directory           ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.concentrator.event               ---- r--- ---- r--- ---- r--- ---- r--- ----
prepaid.concentrator.rejection           ---- ---- ---- r--- ---- ---- ---- r--- ----
prepaid.concentrator.order               ---- r--- r--- rwc- ---- r--- ---- rwc- ----
prepaid.concentrator.order.line          ---- r--- r--- rwc- ---- r--- ---- rwc- ----
prepaid.concentrator.report              ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.concentrator.request_status      ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.configuration                    ---- r--- r--- r--- r--- rw-- r--- rw-- ----
prepaid.configuration.company            ---- r--- r--- r--- r--- rw-- r--- rw-- ----
prepaid.customer.category                ---- r--- r--- r--- r--- rwc- r--- rwcd ----
prepaid.customer.change                  ---- rwc- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.debt                             ---- rwc- r--- ---- ---- rwc- rw-- r--- ----
prepaid.debt.line                        ---- rwc- r--- ---- ---- rwc- rw-- r--- ----
prepaid.emergency_credit                 ---- r--- r--- ---- ---- rw-- r--- rw-- ----
prepaid.emergency_credit.repayment       ---- r--- r--- ---- ---- rw-- r--- rw-- ----
prepaid.feeder                           ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.friendly.calendar                ---- r--- ---- ---- ---- rwcd r--- rwcd ----
prepaid.friendly.calendar.day            ---- r--- ---- ---- ---- rwcd r--- rwcd ----
prepaid.headend.billing                  ---- rw-- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.headend.clock_sync               ---- rw-- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.headend.communication            ---- ---- ---- r--- rw-- ---- ---- rw-- ----
prepaid.headend.event                    ---- rw-- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.headend.firmware                 ---- r--- ---- rwc- ---- r--- ---- rwcd ----
prepaid.headend.firmware.campaign        ---- r--- ---- rwc- ---- r--- ---- rwcd ----
prepaid.headend.firmware.campaign.line   ---- r--- ---- rwc- ---- r--- ---- rwcd ----
prepaid.headend.interval                 ---- rw-- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.headend.invocation_counter       ---- ---- ---- ---- r--- ---- ---- r--- ----
prepaid.headend.job                      ---- r--- ---- r--- ---- r--- ---- r--- ----
prepaid.headend.meter_group              ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.headend.register                 ---- rw-- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.headend.relay                    ---- r--- r--- rwc- ---- r--- ---- rwc- ----
prepaid.headend.schedule                 ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.import.job                       ---- r--- ---- ---- ---- r--- ---- r--d ----
prepaid.load_management                  ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.load_management.period           ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.meter                            ---- rw-- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.meter.change                     ---- rwc- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.meter.command                    ---- r--- r--- rw-- ---- rw-- r--- r--- ----
prepaid.meter.installation               ---- r--- r--- r--- r--- r--- r--- r--- ----
prepaid.meter.month_position             ---- r--- r--- r--- ---- r--- r--- r--- ----
prepaid.meter.state_history              ---- r--- r--- r--- r--- r--- r--- r--- ----
prepaid.meter.tariff                     ---- rwc- r--- r--- ---- rwc- r--- rwcd ----
prepaid.remote.account                   ---- rwc- r--- r--- ---- rwc- r--- r--- ----
prepaid.remote.account.line              ---- rwc- r--- r--- ---- rwc- r--- r--- ----
prepaid.remote.bill                      ---- r--- r--- r--- ---- r--- r--- r--- ----
prepaid.remote.consumption               ---- r--- r--- r-c- ---- r--- r--- r--- ----
prepaid.sales_point                      ---- r--- r--- r--- r--- rwc- r--- rwcd ----
prepaid.service_point                    ---- rwc- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.sts.key_change                   ---- r--- r--- r--- ---- r--- ---- r--- ----
prepaid.sts.rollover                     ---- r--- ---- rwc- ---- rwc- ---- rwcd ----
prepaid.sts.rollover.line                ---- r--- ---- rwcd ---- rwcd ---- rwcd ----
prepaid.sts.token                        ---- r--- r--- r--- ---- r--- r--- r--- ----
prepaid.sts.vending_key                  ---- ---- ---- ---- rwc- ---- ---- ---- ----
prepaid.sts.vending_key.audit            ---- ---- ---- ---- r--- ---- ---- ---- ----
prepaid.substation                       ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.tariff                           ---- r--- r--- r--- ---- rwc- r--- rwcd ----
prepaid.tariff-prepaid.customer.category ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tariff.block                     ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tariff.channel_fee               ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tariff.charge                    ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tariff.version                   ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tou.calendar                     ---- r--- r--- r--- ---- rwc- r--- rwcd ----
prepaid.tou.calendar.day                 ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tou.calendar.day.switch          ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tou.calendar.rate                ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tou.calendar.season              ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tou.calendar.special_day         ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.tou.calendar.week                ---- r--- r--- r--- ---- rwcd r--- rwcd ----
prepaid.transformer                      ---- r--- r--- rwc- r--- rwc- r--- rwcd ----
prepaid.vend                             ---- r--- r--- r--- ---- r--- r--- r--- ----
prepaid.vend.line                        ---- r--- r--- r--- ---- r--- r--- r--- ----
prepaid.vend.reprint                     ---- r--- r--- r--- ---- r--- r--- r--- ----
prepaid.vend.token                       ---- r--- r--- r--- ---- r--- r--- r--- ----
prepaid.vendor.batch                     ---- ---- ---- ---- ---- ---- r--- r--- ----
prepaid.vendor.commission.plan           ---- ---- ---- ---- ---- ---- r--- rwcd ----
prepaid.vendor.commission.rule           ---- ---- ---- ---- ---- ---- r--- rwcd ----
prepaid.vendor.float                     ---- ---- ---- ---- ---- ---- r--- r--- ----
prepaid.vendor.float.counter             ---- ---- ---- ---- ---- ---- r--- r--- ----
prepaid.vendor.float.reservation         ---- ---- ---- ---- ---- ---- r--- r--- ----
prepaid.vendor.float.sold                ---- ---- ---- ---- ---- ---- r--- r--- ----
prepaid.vendor.reconciliation            ---- ---- ---- ---- ---- ---- rwc- r--- ----
prepaid.vendor.reconciliation.line       ---- ---- ---- ---- ---- ---- rw-- r--- ----
prepaid.vendor.sale                      ---- ---- ---- ---- ---- ---- r--- r--- ----
prepaid.vendor.settlement                ---- ---- ---- ---- ---- ---- r--- r--- ----
prepaid.vendor.web_user                  ---- ---- ---- ---- ---- ---- r--- rwcd ----
prepaid.vendor.xmlvend.log               ---- ---- ---- ---- ---- ---- r--- r--- ----
"""

#: Effective field access of the fields that have field access records:
#: a model's name, then its fields.
FIELD_ACCESS = """
field                                    -    op   ca   en   kc   ma   ac   ad   api
prepaid.headend.communication
    dcu_key_cipher                       --cd --cd --cd --cd --cd --cd --cd --cd --cd
    mqtt_allow_plain_password            r-cd r-cd r-cd r-cd r-cd r-cd r-cd rwcd r-cd
    mqtt_password_cipher                 --cd --cd --cd --cd --cd --cd --cd --cd --cd
prepaid.meter.command
    payload                              ---- ---- r--- ---- ---- r--- ---- r--- ----
prepaid.meter
    hes_authentication_key_cipher        --cd --cd --cd --cd --cd --cd --cd --cd --cd
    hes_block_cipher_key_cipher          --cd --cd --cd --cd --cd --cd --cd --cd --cd
    hes_key_fingerprint                  --cd --cd --cd --cd r-cd --cd --cd r-cd --cd
    hes_key_shared                       --cd --cd --cd --cd r-cd --cd --cd r-cd --cd
    hes_password_cipher                  --cd --cd --cd --cd --cd --cd --cd --cd --cd
    sts_last_tid                         r--- r--- r--- r--- r--- r--- r--- r--- r---
prepaid.sts.token
    digits                               ---- ---- r--- ---- ---- r--- ---- r--- ----
prepaid.sts.vending_key
    key_cipher                           ---- ---- ---- ---- ---- ---- ---- ---- ----
prepaid.vend.token
    token                                ---- ---- r--- ---- ---- r--- ---- r--- ----
prepaid.vendor
    settlement_key_cipher                ---- ---- ---- ---- ---- ---- ---- ---- ----
"""


def parse_table(text: str) -> dict[str, dict[str, str]]:
    """{row name: {role: 'rwcd'}} of a table above; a line with a name only
    is the prefix of the names of the rows under it"""
    header, *rows = text.strip().splitlines()
    assert len(header.split()) == len(ROLES) + 1, header
    table, prefix = {}, ''
    for line in rows:
        name, *cells = line.split()
        if not cells:
            prefix = f'{name}.'
            continue
        assert len(cells) == len(ROLES), line
        table[prefix + name if line.startswith(' ') else name] = dict(zip(ROLES, cells))
    return table


def as_letters(access: dict[str, int | bool]) -> str:
    return ''.join(p[0] if access[p] else '-' for p in PERMS)


def union(*cells: str) -> str:
    "The rights of a user in several roles: the widest of each"
    return ''.join(
        next((c[i] for c in cells if c[i] != '-'), '-') for i in range(len(PERMS))
    )


def role_user(role: str, login: str):
    return create_user(login, *(() if role == 'nobody' else (role,)))


def model_access(models) -> dict[str, str]:
    "The current user's access to the models, as Tryton checks it"
    ModelAccess = Pool().get('ir.model.access')
    return {m: as_letters(a) for m, a in ModelAccess.get_access(list(models)).items()}


def field_access(pairs) -> dict[str, str]:
    "The current user's access to the fields (model.field), as Tryton checks it"
    FieldAccess = Pool().get('ir.model.field.access')
    result = {}
    for model, field in pairs:
        # One model per call: Tryton's get_access shares one default
        # dictionary between the models of a call.
        access = FieldAccess.get_access([model])[model].get(field)
        result[f'{model}.{field}'] = as_letters(access) if access else 'rwcd'
    return result


def row(name: str, cells: dict[str, str]) -> str:
    return f'{name:40} ' + ' '.join(cells[r] for r in ROLES)


class AccessMatrixChecks:
    """Mixed into a unittest.TestCase: the tables, on the module named by
    ``module`` and what it depends on"""

    module = 'prepaid_vending'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        activate_module(cls.module)

    def installed_models(self) -> dict[str, dict[str, str]]:
        pool = Pool()
        table = parse_table(MODEL_ACCESS)
        models = {name for name, _ in pool.iterobject()}
        return {m: cells for m, cells in table.items() if m in models}

    def installed_fields(self) -> dict[tuple[str, str], dict[str, str]]:
        pool = Pool()
        models = dict(pool.iterobject())
        fields_ = {}
        for name, cells in parse_table(FIELD_ACCESS).items():
            model, field = name.rsplit('.', 1)
            if model in models and field in models[model]._fields:
                fields_[model, field] = cells
        return fields_

    @with_transaction()
    def test_model_access_per_role(self):
        "Each role, alone, has the access the table gives it, model by model"
        expected = self.installed_models()
        self.assertTrue(expected)
        for role in ROLES:
            user = role_user(role, f'matrix_{role}')
            with self.subTest(role=role), acting_as(user):
                got = model_access(expected)
                differences = [
                    f'{m}: {expected[m][role]} expected, {got[m]} given'
                    for m in sorted(expected)
                    if got[m] != expected[m][role]
                ]
                self.assertFalse(differences, '\n'.join(differences))

    @with_transaction()
    def test_two_roles_have_the_wider_of_each(self):
        """A user in two roles has the wider right of each, no more: no group
        parent or __access__ lends one role's right to a pair"""
        expected = self.installed_models()
        for first, second in itertools.combinations(ROLES[1:], 2):
            user = create_user(f'matrix_{first}_{second}', first, second)
            with self.subTest(roles=(first, second)), acting_as(user):
                got = model_access(expected)
                for model, cells in sorted(expected.items()):
                    self.assertEqual(
                        got[model], union(cells[first], cells[second]), model
                    )

    @with_transaction()
    def test_field_access_per_role(self):
        "Hidden fields (token digits, payloads, key ciphers) per role"
        expected = self.installed_fields()
        self.assertTrue(expected)
        for role in ROLES:
            user = role_user(role, f'matrix_field_{role}')
            with self.subTest(role=role), acting_as(user):
                got = field_access(expected)
                for (model, field), cells in sorted(expected.items()):
                    self.assertEqual(
                        got[f'{model}.{field}'], cells[role], f'{model}.{field}'
                    )

    @with_transaction()
    def test_every_project_model_is_in_the_tables(self):
        """A model the project gives access records (or a field access), or
        that takes its access from one, has its row"""
        pool = Pool()
        ModelAccess = pool.get('ir.model.access')
        FieldAccess = pool.get('ir.model.field.access')
        ModelData = pool.get('ir.model.data')
        project = ModelData.search(
            [
                ('module', 'in', PROJECT_MODULES),
                ('model', 'in', ['ir.model.access', 'ir.model.field.access']),
            ]
        )
        models, fields_ = set(), set()
        for data in project:
            if data.model == 'ir.model.access':
                models.add(ModelAccess(data.db_id).model)
            else:
                access = FieldAccess(data.db_id)
                fields_.add((access.model, access.field))
        for name, Model in pool.iterobject():
            if any(
                getattr(Model, f).get_target().__name__ in models
                for f in getattr(Model, '__access__', ())
            ):
                models.add(name)
        table = self.installed_models()
        missing = sorted(models - set(table))
        rows = []
        for model in missing:
            cells = {}
            for role in ROLES:
                user = role_user(role, f'matrix_missing_{role}_{len(rows)}')
                with acting_as(user):
                    cells[role] = model_access([model])[model]
            rows.append(row(model, cells))
        self.assertFalse(missing, 'rows to add to MODEL_ACCESS:\n' + '\n'.join(rows))
        self.assertFalse(sorted(fields_ - set(self.installed_fields())))

    @with_transaction()
    def test_group_parent_lends_only_model_access(self):
        """A staff group's parent gives its members no button, wizard,
        report, menu, record rule or field access the group has not itself:
        the parents consolidate model access only"""
        pool = Pool()
        Group = pool.get('res.group')
        ModelData = pool.get('ir.model.data')
        # Tryton's own parents (Account Administrator: Account) do lend.
        ours = ModelData.search(
            [('module', 'in', PROJECT_MODULES), ('model', '=', 'res.group')]
        )
        parented = Group.search(
            [('id', 'in', [d.db_id for d in ours]), ('parent', '!=', None)]
        )
        self.assertTrue(parented)
        links = {
            'ir.model.button-res.group': 'button',
            'ir.action-res.group': 'action',
            'ir.ui.menu-res.group': 'menu',
            'ir.rule.group-res.group': 'rule_group',
        }
        for group in parented:
            for model, field in links.items():
                Link = pool.get(model)

                def linked(group, Link=Link, field=field):
                    links = Link.search([('group', '=', group.id)])
                    return {getattr(link, field).id for link in links}

                with self.subTest(group=group.name, links=model):
                    self.assertLessEqual(linked(group.parent), linked(group))
            FieldAccess = pool.get('ir.model.field.access')
            for access in FieldAccess.search([('group', '=', group.parent.id)]):
                with self.subTest(group=group.name, field=access.field):
                    own = FieldAccess.search(
                        [
                            ('group', '=', group.id),
                            ('model', '=', access.model),
                            ('field', '=', access.field),
                        ]
                    )
                    self.assertTrue(own)
                    for perm in PERMS:
                        self.assertLessEqual(
                            getattr(access, f'perm_{perm}'),
                            max(getattr(a, f'perm_{perm}') for a in own),
                        )
