"""A verified fix (issue 26): the smallest edit to the customer's own files that turns a
failing check green, applied to a copy, reloaded and re-checked in the same run.

:mod:`~lab.fix.remedies` says which edit a finding asks for (each proxy kind's package gives
its edit per cause, :mod:`~lab.fix.syntax`), :mod:`~lab.fix.edit` makes it in the customer's
style, :mod:`~lab.fix.verify` reloads and re-checks, :mod:`~lab.fix.report` writes the patch
and the patched bundle.
"""
