"""Which queued job an idle node claims first: priority jobs before the rest (always), then, among the same
priority, a job that waited longer than `prefer_loaded_s` (oldest first: nothing starves), then one for a model
this node has loaded (no load), then the rest in acceptance order."""

from datetime import datetime

from diffusiond.server.job_records import StoredJob


def claim_order(queued: list[StoredJob], loaded: list[str], now: datetime, prefer_loaded_s: float) -> list[StoredJob]:
	"""`queued` in priority and acceptance order (store/job_repo.py `queued`), reordered for this node."""
	ordered: list[StoredJob] = []
	for priority in (True, False):
		group = [job for job in queued if job.priority is priority]
		overdue = [job for job in group if (now - job.created_at).total_seconds() >= prefer_loaded_s]
		waiting = [job for job in group if job not in overdue]
		warm = [job for job in waiting if job.model in loaded]
		ordered += overdue + warm + [job for job in waiting if job not in warm]
	return ordered
