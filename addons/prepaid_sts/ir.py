"""Record rules that depend on the user (cashiers see the tokens they issued)."""

from trytond.pool import PoolMeta
from trytond.transaction import Transaction

#: Models whose record rules use ``Eval('user_id')``.
USER_RULE_MODELS = {"prepaid.sts.token"}


class Rule(metaclass=PoolMeta):
    __name__ = "ir.rule"

    @classmethod
    def _get_context(cls, model_name):
        context = super()._get_context(model_name)
        if model_name in USER_RULE_MODELS:
            context["user_id"] = Transaction().user
        return context

    @classmethod
    def _get_cache_key(cls, model_names):
        key = super()._get_cache_key(model_names)
        if model_names & USER_RULE_MODELS:
            key = (*key, Transaction().user)
        return key
