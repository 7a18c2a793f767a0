from pawgle.common.migrations import run_migrations
from pawgle.pets import models  # noqa: F401  (registers the pets tables)

run_migrations()
