"""Dynamic batching: which queued jobs may share one pipeline call (`device.batch_max_images` > 1).

Jobs batch when one call can serve them all: the same model, LoRAs and weights, size, steps, sampler and
guidance scale. Prompts, negative prompts, seeds, image counts, output formats and previews may differ:
each image keeps its own generator, so its starting noise is the one it gets unbatched. img2img and
inpainting jobs never batch.
"""

from collections.abc import Hashable

from diffusiond.server.pipeline.job import Job


def batch_key(job: Job) -> Hashable | None:
	"""Equal for jobs that can run as one call; None for a job that runs alone."""
	spec = job.spec
	if spec.init_image is not None:
		return None
	loras = tuple(sorted((lora.key, lora.weight) for lora in spec.loras))
	return (job.model.id, spec.width, spec.height, spec.steps, spec.sampler, spec.guidance_scale, loras)
