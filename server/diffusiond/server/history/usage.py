"""Usage statistics from the recorded history: per model, LoRA and style, and images per day."""

from collections import Counter
from datetime import datetime

from pydantic import BaseModel, Field

from diffusiond.server.records import UsageRow


class Usage(BaseModel):
	id: str
	name: str
	jobs: int = 0
	images: int = 0
	last_used: datetime | None = None

	def add(self, row: UsageRow) -> None:
		self.jobs += 1
		self.images += row.images
		self.last_used = max(self.last_used or row.created_at, row.created_at)


class UsageStats(BaseModel):
	models: list[Usage] = Field(default_factory=list)
	loras: list[Usage] = Field(default_factory=list)
	styles: list[Usage] = Field(default_factory=list)
	images_per_day: list[tuple[str, int]] = Field(default_factory=list)
	total_jobs: int = 0
	total_images: int = 0


def _ranked(usages: dict[str, Usage]) -> list[Usage]:
	return sorted(usages.values(), key=lambda usage: (-usage.jobs, usage.name))


def usage_stats(rows: list[UsageRow]) -> UsageStats:
	models: dict[str, Usage] = {}
	loras: dict[str, Usage] = {}
	styles: dict[str, Usage] = {}
	days: Counter[str] = Counter()
	for row in rows:
		models.setdefault(row.model_id, Usage(id=row.model_id, name=row.model_name)).add(row)
		for lora_id, lora_name in row.loras:
			loras.setdefault(lora_id, Usage(id=lora_id, name=lora_name)).add(row)
		for style in row.styles:
			styles.setdefault(style, Usage(id='', name=style)).add(row)
		days[row.created_at.strftime('%Y-%m-%d')] += row.images
	return UsageStats(
		models=_ranked(models),
		loras=_ranked(loras),
		styles=_ranked(styles),
		images_per_day=sorted(days.items()),
		total_jobs=len(rows),
		total_images=sum(row.images for row in rows),
	)
