"""Library chatter off before any pipeline module is imported (the engine package's first import).

transformers warns, while diffusers imports its pipelines, that torchvision is absent and it falls back to
its PIL image processors; the daemon needs neither, and a user would see three warnings at every start.
"""

import transformers

transformers.utils.logging.set_verbosity_error()
