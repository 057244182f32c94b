"""A1111's request and response JSON (modules/api/models.py): the same field names and defaults; fields this
daemon does not read are accepted and ignored, as A1111 ignores unknown ones."""

from pydantic import BaseModel, ConfigDict, Field


class Lenient(BaseModel):
	model_config = ConfigDict(extra='ignore')


class OverrideSettings(Lenient):
	sd_model_checkpoint: str | None = None
	sd_vae: str | None = None
	CLIP_stop_at_last_layers: int | None = None


class ProcessingBody(Lenient):
	"""What txt2img and img2img share (StableDiffusionProcessing's parameters)."""

	prompt: str = ''
	negative_prompt: str = ''
	styles: list[str] = Field(default_factory=list)
	seed: int = -1
	sampler_name: str | None = None
	sampler_index: str | None = None
	scheduler: str | None = None
	batch_size: int = 1
	n_iter: int = 1
	steps: int = 50
	cfg_scale: float = 7.0
	width: int = 512
	height: int = 512
	restore_faces: bool | None = None
	tiling: bool | None = None
	override_settings: OverrideSettings = Field(default_factory=OverrideSettings)
	script_name: str | None = None
	alwayson_scripts: dict[str, object] = Field(default_factory=dict)
	send_images: bool = True
	refiner_checkpoint: str | None = None
	refiner_switch_at: float | None = None


class Txt2ImgBody(ProcessingBody):
	enable_hr: bool = False
	denoising_strength: float | None = None
	hr_scale: float = 2.0
	hr_upscaler: str | None = None
	hr_second_pass_steps: int = 0
	hr_resize_x: int = 0
	hr_resize_y: int = 0
	hr_sampler_name: str | None = None
	hr_prompt: str = ''
	hr_negative_prompt: str = ''


class Img2ImgBody(ProcessingBody):
	init_images: list[str] | None = None
	mask: str | None = None
	denoising_strength: float = 0.75
	mask_blur: int = 4
	inpainting_fill: int = 0
	inpaint_full_res: bool = True
	inpaint_full_res_padding: int = 0
	inpainting_mask_invert: int = 0
	resize_mode: int = 0
	include_init_images: bool = False


class ImagesResponse(BaseModel):
	"""TextToImageResponse / ImageToImageResponse: base64 PNGs, the request echoed, `info` as a JSON string."""

	images: list[str]
	parameters: dict[str, object]
	info: str


class ProgressState(BaseModel):
	skipped: bool = False
	interrupted: bool = False
	stopping_generation: bool = False
	job: str = ''
	job_count: int = 0
	job_timestamp: str = '0'
	job_no: int = 0
	sampling_step: int = 0
	sampling_steps: int = 0


class ProgressResponse(BaseModel):
	progress: float
	eta_relative: float
	state: ProgressState
	current_image: str | None = None
	textinfo: str | None = None


class PngInfoBody(Lenient):
	image: str


class PngInfoResponse(BaseModel):
	info: str
	items: dict[str, str]
	parameters: dict[str, object]


class ExtrasBody(Lenient):
	image: str = ''
	resize_mode: int = 0
	upscaling_resize: float = 2.0
	upscaling_resize_w: int = 512
	upscaling_resize_h: int = 512
	upscaler_1: str = 'None'
	upscaler_2: str = 'None'
	extras_upscaler_2_visibility: float = 0.0
	gfpgan_visibility: float = 0.0
	codeformer_visibility: float = 0.0


class ExtrasResponse(BaseModel):
	image: str
	html_info: str
