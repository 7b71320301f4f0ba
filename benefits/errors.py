"""Errors a user can act on. Each names the file, table, rule or field at fault."""


class BenefitsError(Exception):
    """Base class: printed to the operator without a traceback."""


class IngestError(BenefitsError):
    """An extract cannot be read at all (e.g. persons is missing a required column)."""


class RuleError(BenefitsError):
    """The rule pack is invalid: the message names the file, the rule and the field."""


class ParameterError(RuleError):
    """A parameter has no value in force for the month."""
