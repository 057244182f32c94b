"""The styles seeded once, by the migration that creates the styles table; users edit or delete them freely."""

BUILTIN_STYLES: list[tuple[str, str, str, str]] = [
	# name, prompt, negative prompt, description
	(
		'Photographic',
		'cinematic photo of {prompt}, 35mm photograph, film grain, bokeh, professional, highly detailed',
		'drawing, painting, illustration, cartoon, anime, lowres, blurry',
		'A natural-looking photograph.',
	),
	(
		'Digital art',
		'concept art of {prompt}, digital artwork, illustrative, painterly, matte painting, highly detailed',
		'photo, photorealistic, realism, lowres, blurry',
		'Painterly concept art.',
	),
	(
		'Anime',
		'anime artwork of {prompt}, anime style, key visual, vibrant, studio anime, highly detailed',
		'photo, deformed, black and white, realism, disfigured, low contrast',
		'Anime key visual.',
	),
	(
		'Watercolor',
		'watercolor painting of {prompt}, soft edges, paper texture, loose brushwork',
		'photo, 3d render, harsh lines, oversaturated',
		'Soft watercolor on paper.',
	),
	(
		'Quality boost',
		'masterpiece, best quality, highly detailed',
		'worst quality, low quality, lowres, jpeg artifacts, watermark, signature, text',
		'Appends common quality words and a quality negative prompt.',
	),
]
