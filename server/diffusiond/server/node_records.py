"""The daemons on one database as the store keeps them (store/node_repo.py) and GetSystemInfo lists them."""

from datetime import datetime

from pydantic import BaseModel, Field


class NodeStatus(BaseModel):
	"""What a heartbeat reports of its daemon."""

	queue_depth: int
	busy: bool
	loaded: list[str]  # model names, the one on the device first
	models: list[str] = Field(default_factory=list)  # the models its catalog can run (ListModels `nodes`)


class NodeRecord(BaseModel):
	id: str
	address: str
	device: str
	epoch: int
	serving: bool  # false once it stopped cleanly
	status: NodeStatus
	started_at: datetime
	heartbeat_at: datetime
