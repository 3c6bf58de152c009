"""The guarded fast path (fastpath): the rows it writes are the rows the ORM
writes for the same input, it checks access for every caller, fills the
defaults of columns a row leaves out, checks the values as the ORM does, and
refuses the models it cannot write as the ORM would."""

import contextlib
import datetime as dt
import unittest
from contextlib import nullcontext
from decimal import Decimal as D

from trytond import backend
from trytond.model import fields
from trytond.model.exceptions import (
    AccessError,
    DigitsValidationError,
    RequiredValidationError,
    SelectionValidationError,
    SizeValidationError,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from .. import fastpath
from ..remote import COMMAND_WRITE
from ..vend_pipeline import VEND_WRITE
from .staff import acting_as, as_new_user, create_user
from .vend_fixtures import open_session, with_vending

#: Columns that differ between two inserts of the same values.
NOT_COMPARED = {'id', 'create_date', 'write_date'}
#: Both ways of writing, for the tests that must hold for each.
MODES = {'fast path': False, 'ORM': True}


@contextlib.contextmanager
def rolled_back():
    """What a refused request leaves: nothing (its transaction is rolled
    back); here, back to a savepoint, so that the test goes on (on
    PostgreSQL a failed statement aborts the transaction)."""
    cursor = Transaction().connection.cursor()
    cursor.execute('SAVEPOINT refused')
    try:
        yield
    finally:
        cursor.execute('ROLLBACK TO SAVEPOINT refused')
        Transaction().counter += 1


def raw_row(Model, id_: int) -> dict:
    "The stored row, as the database holds it"
    table = Model.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*table.select(where=table.id == id_))
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone()))


def delete_row(Model, id_: int) -> None:
    table = Model.__table__()
    Transaction().connection.cursor().execute(*table.delete(where=table.id == id_))


def input_of(record, **changes) -> dict:
    "The stored values of record, as create takes them (ids for relations)"
    Model = record.__class__
    names = [n for n in fastpath._columns(Model)]
    (values,) = Model.read([record.id], names)
    values.pop('id')
    values.update(changes)
    return values


class SameRowsAssertion:
    "assert_same_rows, for the fast path tests of every module (a mixin)"

    def assert_same_rows(self, Model, rows, system):
        """Write rows by the fast path then by the ORM (the first ones deleted
        in between, for unique columns): the stored rows are equal; the ids of
        the ORM's rows are returned."""
        fast_ids = fastpath.create(Model, rows, system=system)
        fast = [raw_row(Model, i) for i in fast_ids]
        for id_ in fast_ids:
            delete_row(Model, id_)
        with fastpath.through_orm():
            orm_ids = fastpath.create(Model, rows, system=system)
        orm = [raw_row(Model, i) for i in orm_ids]
        self.assertEqual(len(fast), len(rows))
        for fast_row, orm_row in zip(fast, orm, strict=True):
            for name in NOT_COMPARED:
                fast_row.pop(name)
                orm_row.pop(name)
            self.assertEqual(fast_row, orm_row)
        return orm_ids


class FastPathTestCase(SameRowsAssertion, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def vend(self, env, key='f1', amount='300.00'):
        Vend = Pool().get('prepaid.vend')
        return Vend.vend(env.meter, D(amount), 'cash', env.sales_point, key)

    @with_transaction()
    def test_vend_records_equal_orm_rows(self):
        "Vend, vend lines, month position and command: as the ORM writes them"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Line = pool.get('prepaid.vend.line')
        Position = pool.get('prepaid.meter.month_position')
        Command = pool.get('prepaid.meter.command')
        system = fastpath.SystemWrite('test', ('prepaid_vending.group_admin',))
        with with_vending() as env:
            open_session(env)
            vend = self.vend(env)
            (position,) = Position.search([('meter', '=', env.meter.id)])
            (command,) = Command.search([('vend', '=', vend.id)])
            self.assertTrue(vend.lines)
            rows = {
                Vend: [input_of(vend, idempotency_key='cmp', receipt_sequence=99)],
                Line: [input_of(line) for line in vend.lines],
                Position: [input_of(position)],
                Command: [input_of(command)],
            }
            delete_row(Position, position.id)  # one per meter and month
            for Model, model_rows in rows.items():
                with self.subTest(model=Model.__name__):
                    self.assert_same_rows(Model, model_rows, system)

    @with_transaction()
    def test_defaults_for_columns_given_in_some_rows(self):
        "A column one row gives and another leaves out gets its default there"
        Command = Pool().get('prepaid.meter.command')
        with with_vending() as env:
            now = dt.datetime(2026, 1, 1, 12)
            rows = [
                {
                    'meter': env.meter,
                    'kind': 'disconnect',
                    'payload': '{}',
                    'state': 'sent',
                    'attempts': 3,
                    'created_at': now,
                },
                {'meter': env.meter, 'kind': 'reconnect', 'payload': '{}'},
            ]
            for mode, orm in MODES.items():
                with self.subTest(mode=mode), fastpath.through_orm(orm):
                    first, second = Command.browse(
                        fastpath.create(Command, rows, system=COMMAND_WRITE)
                    )
                    self.assertEqual((first.state, first.attempts), ('sent', 3))
                    self.assertEqual((second.state, second.attempts), ('pending', 0))
                    self.assertIsNotNone(second.created_at)
            # and the rows of both ways are equal (created_at given for both)
            rows[1]['created_at'] = now
            self.assert_same_rows(Command, rows, COMMAND_WRITE)

    @with_transaction()
    def test_records_keep_their_values_and_defaults(self):
        "save(): in-memory records get their ids and the defaults written"
        Command = Pool().get('prepaid.meter.command')
        with with_vending() as env:
            command = Command(meter=env.meter, kind='disconnect', payload='{}')
            fastpath.save([command], system=COMMAND_WRITE)
            self.assertGreater(command.id, 0)
            self.assertEqual((command.state, command.attempts), ('pending', 0))
            Transaction().counter += 1
            stored = Command(command.id)
            self.assertEqual((stored.state, stored.kind), ('pending', 'disconnect'))
            self.assertEqual(stored.create_uid.id, Transaction().user)

    @with_transaction()
    def test_system_write_refused_outside_its_groups(self):
        "Command.queue, a system write: refused to a user outside its groups"
        Command = Pool().get('prepaid.meter.command')
        with with_vending() as env:
            for mode, orm in MODES.items():
                with self.subTest(mode=mode), fastpath.through_orm(orm):
                    with as_new_user('accountant'):
                        with self.assertRaises(AccessError):
                            Command.queue(env.meter, 'disconnect', {})
                    with as_new_user('key_custodian'):
                        with self.assertRaises(AccessError):
                            Command.queue(env.meter, 'disconnect', {})
                    with as_new_user('cashier'):
                        command = Command.queue(env.meter, 'disconnect', {})
                    self.assertEqual(command.state, 'pending')

    @with_transaction()
    def test_vend_write_refused_outside_selling_staff(self):
        """The vend pipeline's writes check their groups at the write too:
        an accountant (no selling group) cannot write a vend line"""
        Line = Pool().get('prepaid.vend.line')
        with with_vending() as env:
            open_session(env)
            row = input_of(self.vend(env).lines[0])
            for mode, orm in MODES.items():
                with self.subTest(mode=mode), fastpath.through_orm(orm):
                    with as_new_user('accountant'), self.assertRaises(AccessError):
                        fastpath.create(Line, [row], system=VEND_WRITE)
                    with as_new_user('cashier'):
                        self.assertTrue(fastpath.create(Line, [row], system=VEND_WRITE))

    @with_transaction()
    def test_user_write_needs_create_access(self):
        """Without a SystemWrite, the user's create access is checked even
        with access checks off (without_check_access does not skip it)"""
        Command = Pool().get('prepaid.meter.command')
        with with_vending() as env:
            row = {'meter': env.meter, 'kind': 'disconnect', 'payload': '{}'}
            cashier = create_user('fp_cashier', 'cashier')
            for mode, orm in MODES.items():
                with self.subTest(mode=mode), fastpath.through_orm(orm):
                    with acting_as(cashier), self.assertRaises(AccessError):
                        fastpath.create(Command, [row])
                    with (
                        Transaction().set_user(cashier.id),
                        Transaction().set_context(_check_access=False),
                        self.assertRaises(AccessError),
                    ):
                        fastpath.create(Command, [row])

    @with_transaction()
    def test_record_rule_on_create(self):
        "A user's write is refused by a create rule its rows do not match"
        pool = Pool()
        Command = pool.get('prepaid.meter.command')
        Group = pool.get('res.group')
        Access = pool.get('ir.model.access')
        RuleGroup = pool.get('ir.rule.group')
        with with_vending() as env:
            (group,) = Group.create([{'name': 'Command writers'}])
            model = 'prepaid.meter.command'
            Access.create(
                [
                    {
                        'model': model,
                        'group': group.id,
                        'perm_read': True,
                        'perm_write': True,
                        'perm_create': True,
                    }
                ]
            )
            RuleGroup.create(
                [
                    {
                        'name': 'Reconnect only',
                        'model': model,
                        'global_p': True,
                        'perm_read': False,
                        'perm_write': False,
                        'perm_create': True,
                        'perm_delete': False,
                        'rules': [
                            (
                                'create',
                                [{'domain': '[["kind", "=", "reconnect"]]'}],
                            )
                        ],
                    }
                ]
            )
            # (the payload's field access is closed to this group: left out)
            writer = create_user('fp_writer', group)
            for mode, orm in MODES.items():
                with self.subTest(mode=mode), fastpath.through_orm(orm):
                    with acting_as(writer):
                        fastpath.create(
                            Command,
                            [{'meter': env.meter, 'kind': 'reconnect'}],
                        )
                        with self.assertRaises(AccessError):
                            fastpath.create(
                                Command,
                                [{'meter': env.meter, 'kind': 'disconnect'}],
                            )

    @with_transaction()
    def test_values_checked_as_the_orm_checks_them(self):
        "Required, size, digits, selection: the ORM's errors, in both ways"
        Line = Pool().get('prepaid.vend.line')
        system = fastpath.SystemWrite('test', ('prepaid_vending.group_admin',))
        with with_vending() as env:
            open_session(env)
            vend = self.vend(env)
            good = input_of(vend.lines[0])
            cases = {
                RequiredValidationError: {'description': None},
                SizeValidationError: {'description': 'x' * 256},
                DigitsValidationError: {'amount': D('1.234')},
                SelectionValidationError: {'kind': 'bogus'},
            }
            for mode, orm in MODES.items():
                for error, change in cases.items():
                    with (
                        self.subTest(mode=mode, error=error.__name__),
                        fastpath.through_orm(orm),
                        self.assertRaises(error),
                        # PostgreSQL aborts the transaction on the failed
                        # INSERT (NOT NULL, length): go on from a savepoint.
                        rolled_back()
                        if backend.name == 'postgresql'
                        else nullcontext(),
                    ):
                        fastpath.create(Line, [{**good, **change}], system=system)
                # the same row without the fault is written
                with fastpath.through_orm(orm):
                    self.assertTrue(fastpath.create(Line, [good], system=system))

    @with_transaction()
    def test_update_like_write(self):
        """update(): write_uid/write_date set, record caches forget the old
        values, the row equals the ORM write's"""
        pool = Pool()
        Position = pool.get('prepaid.meter.month_position')
        User = pool.get('res.user')
        system = fastpath.SystemWrite('test', ('prepaid_vending.group_manager',))
        with with_vending() as env:
            open_session(env)
            self.vend(env)
            (position,) = Position.search([('meter', '=', env.meter.id)])
            self.assertIsNone(raw_row(Position, position.id)['write_uid'])
            kwh = position.kwh  # now in the record caches
            writer = create_user('fp_manager', 'manager')
            rows = {}
            for mode, orm in MODES.items():
                with (
                    fastpath.through_orm(orm),
                    Transaction().set_user(writer.id),
                ):
                    fastpath.update([position], {'kwh': kwh + 1}, system=system)
                    fastpath.update([position], {'vends': 7}, system=system)
                self.assertEqual(position.kwh, kwh + 1)
                self.assertEqual(Position(position.id).vends, 7)
                rows[mode] = raw_row(Position, position.id)
                self.assertEqual(rows[mode]['write_uid'], writer.id)
                self.assertIsNotNone(rows[mode]['write_date'])
                with fastpath.through_orm(orm):
                    fastpath.update([position], {'kwh': kwh, 'vends': 1}, system=system)
            for row in rows.values():
                row.pop('write_date')
            self.assertEqual(rows['fast path'], rows['ORM'])
            # An undeclared field is refused before anything is written.
            with self.assertRaises(fastpath.FastPathUnsupported):
                fastpath.update(
                    [position], {'month': dt.date(2000, 1, 1)}, system=system
                )
            # A user's update needs write access (staff have none here).
            with as_new_user('manager'), self.assertRaises(AccessError):
                fastpath.update([position], {'kwh': kwh})
            self.assertTrue(User.search([('id', '=', writer.id)]))

    @with_transaction()
    def test_switch_from_the_configuration(self):
        "[prepaid] fast_path = False sends the callers through the ORM"
        from trytond import config

        self.assertFalse(fastpath.orm_enabled())
        if not config.has_section('prepaid'):
            config.add_section('prepaid')
        config.set('prepaid', 'fast_path', 'False')
        try:
            self.assertTrue(fastpath.orm_enabled())
            with fastpath.through_orm(False):
                self.assertFalse(fastpath.orm_enabled())
        finally:
            config.set('prepaid', 'fast_path', 'True')
        self.assertFalse(fastpath.orm_enabled())


class GuardTestCase(unittest.TestCase):
    "The guard refuses what the fast path cannot write as the ORM would"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def variant(self, name=None, **attributes):
        "A class of the vend line model (or of name) with other attributes"
        Line = Pool().get('prepaid.vend.line')
        namespace = {'__module__': __name__, **attributes}
        return type(name or Line.__name__, (Line,), namespace)

    def assert_refused(self, Model, reason: str):
        with self.assertRaises(fastpath.FastPathUnsupported) as refusal:
            fastpath.guard(Model)
        self.assertIn(reason, str(refusal.exception))

    @with_transaction()
    def test_refusals(self):
        Line = Pool().get('prepaid.vend.line')
        fastpath.guard(Line)  # the model itself passes
        translated = fields.Char("Description", translate=True)
        setter = fields.Function(fields.Char("X"), 'get_x', setter='set_x')
        cases = {
            'history': self.variant(_history=True),
            'tree': self.variant(_mptt_fields={'parent'}),
            'translated': self.variant(
                _fields={**Line._fields, 'description': translated}
            ),
            'setter': self.variant(_fields={**Line._fields, 'x': setter}),
            'hook': self.variant(check_modification=classmethod(lambda *a, **k: None)),
            'not declared': self.variant('test.undeclared'),
        }
        for reason, Model in cases.items():
            with self.subTest(reason=reason):
                self.assert_refused(Model, reason.split()[0])

    @with_transaction()
    def test_known_hook_passes(self):
        "A hook override passes once KNOWN_HOOKS lists it"

        def on_modification(cls, mode, records, field_names=None):
            pass

        Model = self.variant(on_modification=classmethod(on_modification))
        module = Model.__module__.removeprefix('trytond.modules.')
        name = f'{module}.{Model.__qualname__}.'
        self.assert_refused(Model, name + 'on_modification')
        fastpath.know_hook(name + 'on_modification', 'test')
        try:
            Model = self.variant(on_modification=classmethod(on_modification))
            fastpath.guard(Model)
        finally:
            fastpath.KNOWN_HOOKS.pop(name + 'on_modification')

    @with_transaction()
    def test_setter_values_refused(self):
        "A row giving a One2Many (setter) value is refused, nothing written"
        Vend = Pool().get('prepaid.vend')
        with self.assertRaises(fastpath.FastPathUnsupported):
            fastpath.create(
                Vend,
                [{'lines': [('create', [{}])]}],
                system=fastpath.SystemWrite('test', ('prepaid_vending.group_admin',)),
            )

    @with_transaction()
    def test_update_guard(self):
        "An UPDATE of a tree parent, a setter or an undeclared field is refused"
        Meter = Pool().get('prepaid.meter')
        declared = fastpath.declared_updates().get('prepaid.meter', frozenset())
        fastpath.declare_update('prepaid.meter', 'master', 'customer')
        try:
            for name, reason in {
                'master': 'tree parent',
                'customer': 'setter',
                'serial': 'not declared',
            }.items():
                with self.subTest(field=name):
                    with self.assertRaises(fastpath.FastPathUnsupported) as refusal:
                        fastpath.guard_update(Meter, {name})
                    self.assertIn(reason, str(refusal.exception))
        finally:  # the registry is the process's: leave it as it was
            fastpath._declared_updates['prepaid.meter'] = set(declared)
