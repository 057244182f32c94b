"""The samplers a request names (A1111's names); engine/schedulers.py maps them to diffusers schedulers."""

import enum


class Sampler(enum.Enum):
	"""A1111 sampler names; member names match the proto enum's suffixes (SAMPLER_<NAME>)."""

	UNSPECIFIED = 'model default'
	EULER = 'Euler'
	EULER_A = 'Euler a'
	HEUN = 'Heun'
	DPMPP_2M = 'DPM++ 2M'
	DPMPP_2M_KARRAS = 'DPM++ 2M Karras'
	DPMPP_SDE = 'DPM++ SDE'
	DPMPP_SDE_KARRAS = 'DPM++ SDE Karras'
	DPM2 = 'DPM2'
	DPM2_A = 'DPM2 a'
	LMS = 'LMS'
	DDIM = 'DDIM'
	PNDM = 'PNDM'
	UNIPC = 'UniPC'
	DEIS = 'DEIS'
	DPMPP_2M_SDE = 'DPM++ 2M SDE'
	DPMPP_2M_SDE_KARRAS = 'DPM++ 2M SDE Karras'
	LMS_KARRAS = 'LMS Karras'
	EULER_KARRAS = 'Euler Karras'
