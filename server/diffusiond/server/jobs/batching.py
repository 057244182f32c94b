"""Dynamic batching: which queued jobs may share one pipeline call (`device.batch_max_images` > 1).

Jobs batch when one call can serve them all: the same model, LoRAs and weights, VAE, size, steps, sampler,
schedule, speed options, guidance scale and prompt chunk counts (75-token chunks: a longer prompt is a longer conditioning).
Prompts, negative prompts, seeds, image counts, output formats and previews may differ:
each image keeps its own generator, so its starting noise is the one it gets unbatched. img2img and
inpainting jobs never batch. A job joins only while the call's working memory, with every saver on, still fits the
device (jobs/memory.py): a batch that would not is split, the rest waiting for the next call.
"""

from collections.abc import Callable, Hashable, Iterable

from diffusiond.server.jobs.job import Job
from diffusiond.server.schemas import JobSpec

BatchFits = Callable[[list[JobSpec]], bool]  # whether one call of these jobs fits the device (the engine's estimate)


def any_size(specs: list[JobSpec]) -> bool:
	"""Every call fits (no memory estimate: a fake engine's, or none)."""
	return True


def batch_key(job: Job) -> Hashable | None:
	"""Equal for jobs that can run as one call; None for a job that runs alone."""
	spec = job.spec
	if not spec.task.batches() or spec.controlnets or spec.refiner:  # a job's own control images, refiner
		return None
	loras = tuple(sorted((lora.key, lora.weight) for lora in spec.loras))
	chunks = spec.tokens.shape if spec.tokens is not None else None  # prompts of other lengths encode differently
	shape = (spec.width, spec.height, spec.steps, spec.sampler, spec.schedule, spec.guidance_scale, spec.clip_skip)
	speed = (spec.deep_cache, spec.token_merging, spec.fast_decode)
	vae = spec.vae.key if spec.vae is not None else None
	return (job.model.id, *shape, *speed, loras, chunks, vae)


def partners(head: Job, queued: Iterable[Job], max_images: int, fits: BatchFits = any_size) -> list[Job]:
	"""The queued jobs (in queue order, from anywhere in the queue) that join `head`'s call, at most
	`max_images` images in all, and as long as the call `fits`; while a priority job of another shape waits, only
	priority jobs ride along, so none jumps it."""
	room = max_images - len(head.spec.seeds)
	wanted = batch_key(head)
	if room <= 0 or wanted is None:  # batching off (max 1), a full head, or a job that runs alone
		return []
	waiting = list(queued)
	guarded = any(job.priority and batch_key(job) != wanted for job in waiting)
	chosen: list[Job] = []
	for job in waiting:
		if len(job.spec.seeds) > room or batch_key(job) != wanted or (guarded and not job.priority):
			continue
		if fits([head.spec, *(partner.spec for partner in chosen), job.spec]):
			chosen.append(job)
			room -= len(job.spec.seeds)
	return chosen
