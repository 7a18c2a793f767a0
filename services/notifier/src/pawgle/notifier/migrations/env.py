from pawgle.common.migrations import run_migrations
from pawgle.notifier import models  # noqa: F401  (registers the notifier's tables)

run_migrations()
