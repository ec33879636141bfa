"""Changing the service: plans and steps, the release engine, approvals, rollout following, the audit trail."""
