"""The access checks of issue 11 §1-2 on the whole installation: every
wizard, button, project model and hidden field of all the modules."""

import unittest

from trytond.modules.prepaid_vending.tests.access_checks import AccessChecks
from trytond.tests.test_tryton import activate_module, with_transaction


class InstallationAccessTestCase(AccessChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_headend')

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
