"""The A1111 prompt language, as pure text logic: attention weights and BREAK (attention.py), 75-token chunks
(chunks.py) and `<lora:name:weight>` tags (lora_tags.py). The engine turns the result into embeddings."""
