"""What the store keeps about a LoRA, and the changes UpdateLora can make."""

from datetime import datetime

from pydantic import BaseModel

from diffusiond.server.catalog.lora_probe import LoraProbe

SHORT_HASH_LENGTH = 12  # A1111's "Lora hashes" use the first 12 hex characters of the addnet hash
MAX_WEIGHT = 2.0


class LoraRecord(BaseModel):
	id: str
	name: str
	path: str  # relative to the loras folder
	probe: LoraProbe
	size_bytes: int
	mtime_ns: int
	sha256: str | None
	addnet_hash: str | None
	display_name: str
	tags: list[str]
	trigger_words: list[str]  # the user's, else the suggested ones
	custom_triggers: bool
	default_weight: float
	enabled: bool
	note: str = ''
	added_at: datetime
	last_used_at: datetime | None

	@property
	def short_hash(self) -> str:
		return self.addnet_hash[:SHORT_HASH_LENGTH] if self.addnet_hash else ''


class LoraChanges(BaseModel):
	"""Only the fields that are set change; `trigger_words=[]` clears them, `reset_triggers` restores the suggested."""

	display_name: str | None = None
	tags: list[str] | None = None
	trigger_words: list[str] | None = None
	reset_triggers: bool = False
	default_weight: float | None = None
	enabled: bool | None = None
	note: str | None = None
