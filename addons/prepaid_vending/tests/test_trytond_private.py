"""The private trytond names of trytond_private, against the installed
trytond: each exists and behaves as the wrappers expect.  After an upgrade
of trytond, this is the test that says what to adapt."""

import unittest

import trytond
from trytond import backend
from trytond.model.exceptions import (
    AccessError,
    RequiredValidationError,
    SizeValidationError,
    SQLConstraintError,
)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction, TransactionError, check_access

from .. import trytond_private
from .tools import with_company


class TrytondPrivateTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def test_series(self):
        "The wrappers were checked for the installed series"
        self.assertEqual(trytond.__series__, trytond_private.TRYTOND_SERIES)

    def insert_substation(self, code):
        "A raw INSERT, as the fast path makes them"
        Substation = Pool().get('prepaid.substation')
        table = Substation.__table__()
        company = Transaction().context['company']
        Transaction().connection.cursor().execute(
            *table.insert(
                [table.company, table.name, table.code, table.active],
                [[company, 'North', code, True]],
            )
        )

    @with_company
    def test_raise_integrity_error(self):
        "A unique violation becomes the model's constraint message"
        Substation = Pool().get('prepaid.substation')
        self.insert_substation('SS1')
        transaction = Transaction()
        company = transaction.context['company']
        with self.assertRaises(backend.DatabaseIntegrityError) as caught:
            self.insert_substation('SS1')
        with self.assertRaises(SQLConstraintError):
            with transaction.new_transaction():
                trytond_private.raise_integrity_error(
                    Substation,
                    caught.exception,
                    {'company': company, 'name': 'North', 'code': 'SS1'},
                )

    @with_company
    def test_raise_integrity_error_required(self):
        "A missing required value is named as the ORM names it"
        Substation = Pool().get('prepaid.substation')
        error = backend.DatabaseIntegrityError('NOT NULL')
        with self.assertRaises(RequiredValidationError):
            trytond_private.raise_integrity_error(Substation, error, {'name': 'N'})
        # Nothing to name: returns (the caller re-raises the database error).
        self.assertIsNone(
            trytond_private.raise_integrity_error(
                Substation,
                error,
                {
                    'company': Transaction().context['company'],
                    'name': 'N',
                    'code': 'C',
                    'active': True,
                },
            )
        )

    @with_company
    def test_raise_data_error(self):
        "A value too long for its column is named with the field's size"
        Substation = Pool().get('prepaid.substation')
        error = backend.DatabaseDataError('too long')
        with self.assertRaises(SizeValidationError):
            trytond_private.raise_data_error(Substation, error, {'code': 'x' * 33})

    @with_company
    def test_check_domain_rule(self):
        "Ids that the rules (here: existence) refuse raise AccessError"
        Substation = Pool().get('prepaid.substation')
        (substation,) = Substation.create([{'name': 'N', 'code': 'SS2'}])
        with check_access():
            trytond_private.check_domain_rule(Substation, [substation.id], 'write')
            with self.assertRaises(AccessError):
                trytond_private.check_domain_rule(
                    Substation, [substation.id + 1000], 'write'
                )

    @with_company
    def test_mark_locked(self):
        "Model.lock of marked rows does not restart the transaction"
        Substation = Pool().get('prepaid.substation')
        # Inserted raw: lock() skips the rows the ORM created in the
        # transaction (they cannot be another transaction's).
        self.insert_substation('SS3')
        (substation,) = Substation.search([('code', '=', 'SS3')])
        with self.assertRaises(TransactionError):
            Substation.lock([substation])
        trytond_private.mark_locked(Substation._table, [substation.id])
        Substation.lock([substation])

    @with_company
    def test_record_values_and_ids(self):
        "The in-memory values of a record, a new id given, caches dropped"
        Substation = Pool().get('prepaid.substation')
        substation = Substation(name='N', code='SS4')
        self.assertEqual(
            trytond_private.record_values(substation), {'name': 'N', 'code': 'SS4'}
        )
        self.assertEqual(trytond_private.record_values(Substation()), {})
        trytond_private.adopt_id(substation, 4242)
        self.assertEqual(substation.id, 4242)
        self.assertEqual(substation.code, 'SS4')  # still in memory
        trytond_private.set_record_values(substation, {'code': 'SS5'})
        self.assertEqual(substation.code, 'SS5')
        saved = Substation.create([{'name': 'N', 'code': 'SS6'}])[0]
        saved.name  # noqa: B018 (read: fills the record's own cache)
        self.assertIn(saved.id, saved._local_cache)
        trytond_private.forget_local(saved)
        self.assertNotIn(saved.id, saved._local_cache)

    @with_company
    def test_drop_count(self):
        "The cached count is forgotten"
        Substation = Pool().get('prepaid.substation')
        Substation._count_cache.set(Substation.__name__, 7)
        trytond_private.drop_count(Substation)
        self.assertIsNone(Substation._count_cache.get(Substation.__name__))
