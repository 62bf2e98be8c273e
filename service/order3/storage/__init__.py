"""Storage: the schema, its migrations, and the queries the service runs.

SQLite is the embedded default and PostgreSQL the production database; the same Core
statements serve both.
"""
