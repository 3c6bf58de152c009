"""The access checks of issue 11 §1-2 on the whole installation: every
wizard, button, project model and hidden field of all the modules."""

import unittest

from trytond.modules.prepaid_vending.tests.access_checks import AccessChecks


class InstallationAccessTestCase(AccessChecks, unittest.TestCase):
    module = 'prepaid_headend'
