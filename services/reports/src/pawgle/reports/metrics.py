"""The reports service's own metrics (on /metrics beside the shared ones)."""

from __future__ import annotations

from prometheus_client import Counter

REPORTS_FILED = Counter("pawgle_reports_filed_total", "Reports filed, by status and source", ["status", "source"])
REPORTS_EXPIRED = Counter("pawgle_reports_expired_total", "Reports that left the maps unrenewed")
PARTNER_ROWS = Counter("pawgle_reports_partner_rows_total", "Partner feed rows, by outcome", ["outcome"])
