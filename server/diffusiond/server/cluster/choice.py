"""Which queued job an idle node claims first: priority jobs before the rest (always), then, among the same
priority, a job that waited longer than `prefer_loaded_s` (oldest first: nothing starves), then one whose model and
every LoRA this node has loaded and attached (neither load nor attach), then one for a model it has loaded, then the
rest in acceptance order."""

from datetime import datetime

from diffusiond.server.job_records import StoredJob


def claim_order(
	queued: list[StoredJob], warm: dict[str, set[str]], now: datetime, prefer_loaded_s: float
) -> list[StoredJob]:
	"""`queued` in priority and acceptance order (store/job_repo.py `queued`), reordered for this node. `warm`: the
	models this node has loaded → the names of the LoRAs attached to each."""
	ordered: list[StoredJob] = []
	for priority in (True, False):
		group = [job for job in queued if job.priority is priority]
		overdue = [job for job in group if (now - job.created_at).total_seconds() >= prefer_loaded_s]
		waiting = [job for job in group if job not in overdue]
		loaded = [job for job in waiting if job.model in warm]
		hot = [job for job in loaded if {lora.name for lora in job.info.loras} <= warm[job.model]]
		ordered += overdue + hot + [job for job in loaded if job not in hot]
		ordered += [job for job in waiting if job not in loaded]
	return ordered
