from pawgle.auth import models  # noqa: F401  (registers the auth tables)
from pawgle.common.migrations import run_migrations

run_migrations()
