"""The framework-free core: drafts, approvals, decisions, money and principals.

Nothing in this package imports Litestar or SQLAlchemy; the HTTP layer and storage depend on
it, never the other way round.
"""
