"""Prompt benchmarks: reading (parse + chunk with the real CLIP tokenizer) and encoding a 300-token weighted
prompt against a plain 20-token one, and both against a tiny generation, on the tiny model's text encoder."""

import tempfile
from pathlib import Path

import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from bench.timing import median_seconds
from diffusiond.server.catalog.tokenizer_files import END, write_tokenizer
from diffusiond.server.engine.demo import build_pipeline
from diffusiond.server.engine.prompt_embeds import embed
from diffusiond.server.prompting.tokens import PromptTokenizer

PLAIN = 'a photo of a red fox in the snow, forest, golden hour light'
WEIGHTED = ', '.join(
	f'({word}:{1 + index % 5 / 10:.1f})' if index % 3 == 0 else f'[{word}]' if index % 3 == 1 else word
	for index, word in enumerate(
		[
			'masterpiece',
			'best',
			'quality',
			'detailed',
			'fur',
			'of',
			'a',
			'red',
			'fox',
			'sitting',
			'in',
			'deep',
			'fresh',
			'snow',
			'under',
			'pine',
			'trees',
			'at',
			'dawn',
			'with',
			'soft',
			'golden',
			'light',
			'and',
			'long',
			'shadows',
			'mist',
			'rising',
			'from',
			'a',
			'frozen',
			'river',
			'mountains',
			'behind',
			'sharp',
			'focus',
			'bokeh',
			'film',
			'grain',
			'35mm',
			'photo',
			'award',
			'winning',
			'national',
			'geographic',
			'style',
		]
		* 3
	)
)


def run_prompts(repeats: int = 15) -> list[tuple[str, str]]:
	with tempfile.TemporaryDirectory() as scratch:
		folder = Path(scratch)
		write_tokenizer(folder, END)
		clip = CLIPTokenizer.from_pretrained(str(folder))
		pipe = build_pipeline()
		pipe.set_progress_bar_config(disable=True)
		config = pipe.text_encoder.config.to_dict() | {'vocab_size': len(clip), 'eos_token_id': 2}
		pipe.text_encoder = CLIPTextModel(CLIPTextConfig(**config)).eval()
		pipe.tokenizer = clip
		tokenizer = PromptTokenizer(clip)

		def read_and_encode(prompt: str) -> None:
			tokens = tokenizer.tokens(prompt, '')
			count = max(len(tokens.prompt.chunks), len(tokens.negative.chunks))
			with torch.inference_mode():
				embed(pipe, tokens, True, count)

		weighted_tokens = tokenizer.tokens(WEIGHTED, '').prompt.token_count
		plain_tokens = tokenizer.tokens(PLAIN, '').prompt.token_count
		read_and_encode(WEIGHTED)  # warm-up
		weighted = median_seconds(lambda: read_and_encode(WEIGHTED), repeats)
		plain = median_seconds(lambda: read_and_encode(PLAIN), repeats)
		parse = median_seconds(lambda: tokenizer.tokens(WEIGHTED, ''), repeats)
		with torch.inference_mode():
			generation = median_seconds(lambda: pipe(PLAIN, num_inference_steps=20, width=64, height=64), 3)
	return [
		(
			f'prompt read + encoded: {weighted_tokens}-token weighted ÷ {plain_tokens}-token plain',
			f'{weighted / plain:.2f}',
		),
		(
			f'  {weighted_tokens}-token weighted prompt: read (parse + chunk) / read + encode',
			f'{parse * 1000:.1f} / {weighted * 1000:.1f} ms',
		),
		('  the weighted prompt ÷ a tiny 20-step generation', f'{weighted / generation:.3f}'),
	]


if __name__ == '__main__':
	for name, value in run_prompts():
		print(f'{name:<70} {value:>14}')
