"""Reading what the first wave wrote: job specs that said their task through optional fields.

Until the tasks existed, a spec marked img2img by a `strength`, inpainting by `inpaint`, with `mask_blur`
and `mask_crop_padding` beside them. Stored history (migration 0007), archives of versions 1 and 2, and
the JSON inside older images still hold that layout; this module is the one place that reads it.
"""

from diffusiond.server.tasks.img2img import Img2Img
from diffusiond.server.tasks.inpaint import Inpaint
from diffusiond.server.tasks.txt2img import Txt2Img

LEGACY_FIELDS = ('strength', 'inpaint', 'mask_blur', 'mask_crop_padding', 'init_image', 'mask_image')


def legacy_task(
	strength: float | None, inpaint: bool, mask_blur: int = 0, mask_crop_padding: int | None = None
) -> Txt2Img | Img2Img | Inpaint:
	if strength is None:
		return Txt2Img()
	if inpaint:
		return Inpaint(strength=strength, mask_blur=mask_blur, mask_crop_padding=mask_crop_padding)
	return Img2Img(strength=strength)


def _number(value: object) -> float | None:
	return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _integer(value: object) -> int | None:
	return value if isinstance(value, int) and not isinstance(value, bool) else None


def upgrade_spec(data: dict[str, object]) -> dict[str, object]:
	"""A spec document in today's layout (`task`); one that has a task already comes back unchanged."""
	if 'task' in data:
		return data
	task = legacy_task(
		_number(data.get('strength')),
		data.get('inpaint') is True,
		_integer(data.get('mask_blur')) or 0,
		_integer(data.get('mask_crop_padding')),
	)
	upgraded = {key: value for key, value in data.items() if key not in LEGACY_FIELDS}
	upgraded['task'] = task.model_dump(mode='json')
	return upgraded
