"""Application workflows: load, decide through the policy engine, then commit the change with
its audit records. The HTTP layer and the CLI call these; they hold no HTTP concerns."""
