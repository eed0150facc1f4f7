from bookwell.hooks.migrations import run_migrations

run_migrations()
