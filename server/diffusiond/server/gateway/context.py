"""What the HTTP handlers reach: the daemon's own objects, nothing of their own."""

from diffusiond.server.catalog import Catalog
from diffusiond.server.catalog.loras import LoraCatalog
from diffusiond.server.gate import Gate
from diffusiond.server.history.book import History
from diffusiond.server.jobs.manager import PipelineManager
from diffusiond.server.settings import Settings
from diffusiond.server.styles.book import StyleBook


class Gateway:
	def __init__(self, settings: Settings, manager: PipelineManager, history: History, gate: Gate) -> None:
		self.settings = settings
		self.manager = manager
		self.history = history
		self.gate = gate

	@property
	def catalog(self) -> Catalog:
		return self.manager.catalog

	@property
	def loras(self) -> LoraCatalog:
		return self.manager.loras

	@property
	def styles(self) -> StyleBook:
		return self.manager.styles
