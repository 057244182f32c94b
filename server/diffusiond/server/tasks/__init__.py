"""Tasks: one module per kind of work. A task states its request fields and how they are checked, what its
spec carries (sources as PNG bytes, so a spec is plain data), how many steps it denoises, whether it
batches, and what it writes into the infotext. The kind is chosen once, where a request is converted
(`task_request`); nothing else asks which optional fields were sent. The engine runs each kind
(engine/denoise.py). Adding a kind = a module here, a branch in `task_request`, a runner in the engine.
"""

from typing import Annotated

from pydantic import Field

from diffusiond.server.errors import FieldViolation
from diffusiond.server.tasks.hires import Hires, HiresRequest
from diffusiond.server.tasks.img2img import Img2Img, Img2ImgRequest
from diffusiond.server.tasks.inpaint import Inpaint, InpaintRequest
from diffusiond.server.tasks.sources import Sources
from diffusiond.server.tasks.txt2img import Txt2Img, Txt2ImgRequest

Task = Annotated[Txt2Img | Hires | Img2Img | Inpaint, Field(discriminator='kind')]
TaskRequest = Annotated[Txt2ImgRequest | HiresRequest | Img2ImgRequest | InpaintRequest, Field(discriminator='kind')]
AnyRequest = Txt2ImgRequest | HiresRequest | Img2ImgRequest | InpaintRequest


def _misplaced(field: str, needs: str) -> FieldViolation:
	return FieldViolation(field=field, description=f'{field} applies to {needs}; send it too, or leave {field} unset')


def task_request(
	init_image: bytes,
	mask_image: bytes,
	strength: float | None,
	mask_blur: int,
	mask_crop_padding: int | None,
	hires: HiresRequest | None = None,
) -> AnyRequest:
	"""The one place the kind of a request is decided: a mask over an image inpaints, an image alone is img2img,
	no image is text-to-image, with `hires` a hires fix. Fields of another kind are kept as violations, reported
	with the rest."""
	mask_fields = [
		_misplaced(field, 'inpainting: it needs mask_image')
		for field, value in (('mask_blur', mask_blur or None), ('mask_crop_padding', mask_crop_padding))
		if value is not None
	]
	if hires is not None and init_image:
		mask_fields.insert(0, _misplaced('hires', 'text-to-image: leave init_image unset'))
	if init_image and mask_image:
		return InpaintRequest(
			init_image=init_image,
			mask_image=mask_image,
			strength=strength,
			mask_blur=mask_blur,
			mask_crop_padding=mask_crop_padding,
			misplaced=mask_fields[:1] if hires is not None else [],
		)
	if init_image:
		return Img2ImgRequest(init_image=init_image, strength=strength, misplaced=mask_fields)
	misplaced = mask_fields
	if strength is not None:
		misplaced.insert(0, _misplaced('strength', 'img2img: it needs init_image'))
	if mask_image:
		misplaced.insert(
			0, FieldViolation(field='mask_image', description='mask_image masks an init_image: send init_image too')
		)
	if hires is not None:
		return hires.model_copy(update={'misplaced': misplaced})
	return Txt2ImgRequest(misplaced=misplaced)


def build(request: AnyRequest, sources: Sources | None, width: int, height: int) -> Txt2Img | Hires | Img2Img | Inpaint:
	"""The task spec at the job's size: sources fitted and encoded (blocking image work: call through a thread)."""
	return request.task(sources, width, height)


__all__ = [
	'AnyRequest',
	'Hires',
	'HiresRequest',
	'Img2Img',
	'Img2ImgRequest',
	'Inpaint',
	'InpaintRequest',
	'Task',
	'TaskRequest',
	'Txt2Img',
	'Txt2ImgRequest',
	'build',
	'task_request',
]
