"""The scenario doctests (``scenario_*.rst``) under Tryton's own test runner.

``python -m unittest trytond.modules.<module>.tests.test_scenario`` (and
trytond's ``run-tests``) find the scenarios through ``load_tests``, as for
Tryton's own modules.  pytest does not use ``load_tests``: it collects the
same files once through ``--doctest-glob`` (pyproject.toml), so nothing runs
twice there.
"""

from trytond.tests.test_tryton import load_doc_tests


def load_tests(*args, **kwargs):
    return load_doc_tests(__name__, __file__, *args, **kwargs)
