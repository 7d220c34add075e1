"""Governance: identity and roles, the governance service (authorization, users and tokens, the
audit log, kill switches, policies, approvals), policies as data and their enforcement, personal
data detection, output validators.

Governance sits below the engine: it never imports :mod:`podium.engine`. What it needs of a running
step it asks through the :class:`~podium.governance.policy.RunScope` port, which the step context
implements.
"""
