from pawgle.common.migrations import run_migrations
from pawgle.reports import models  # noqa: F401  (registers the reports tables)

run_migrations()
