"""The access of every role to every model of the installation (vending,
STS, head-end), as written down in prepaid_vending's access_matrix.py."""

import unittest

from trytond.modules.prepaid_vending.tests.access_matrix import AccessMatrixChecks


class InstallationAccessMatrixTestCase(AccessMatrixChecks, unittest.TestCase):
    module = 'prepaid_headend'
