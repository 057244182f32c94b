"""Image work of the A1111 routes, run in threads: the infotexts of finished images, png-info, a mask inverted."""

import io

from PIL import Image, ImageOps

from diffusiond.server.images import decode_image
from diffusiond.server.prompting.parameters import ParsedParameters, parse_text
from diffusiond.server.tasks.sources import png


def infotexts(images: list[bytes]) -> list[str]:
	found = []
	for data in images:
		with Image.open(io.BytesIO(data)) as image:
			text = image.info.get('parameters', '')
			found.append(text if isinstance(text, str) else '')
	return found


def parameters_dict(parsed: ParsedParameters) -> dict[str, object]:
	"""The parsed infotext as A1111's parse_generation_parameters names its keys."""
	found: dict[str, object] = {'Prompt': parsed.prompt, 'Negative prompt': parsed.negative_prompt}
	for key, value in (
		('Steps', parsed.steps),
		('Sampler', parsed.sampler.value if parsed.sampler is not None else None),
		('CFG scale', parsed.guidance_scale),
		('Seed', parsed.seed),
		('Size-1', parsed.width),
		('Size-2', parsed.height),
		('Model', parsed.model or None),
		('Clip skip', parsed.clip_skip),
		('VAE', parsed.vae or None),
		('Denoising strength', parsed.strength),
	):
		if value is not None:
			found[key] = value
	for entry in parsed.unknown:
		key, _, value = entry.partition(': ')
		found[key] = value
	return found


def png_info(data: bytes, max_pixels: int) -> tuple[str, dict[str, str], dict[str, object]]:
	"""A1111's /png-info: the infotext, the image's other text chunks, the infotext parsed."""
	image = decode_image(data, max_pixels, 'image')
	chunks = {key: value for key, value in image.info.items() if isinstance(key, str) and isinstance(value, str)}
	text = chunks.pop('parameters', '')
	return text, chunks, parameters_dict(parse_text(text)) if text else {}


def inverted_mask(data: bytes, max_pixels: int) -> bytes:
	"""A1111's inpainting_mask_invert: the mask's black and white swapped."""
	return png(ImageOps.invert(decode_image(data, max_pixels, 'mask').convert('L')))
