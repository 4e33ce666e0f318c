"""A pass-through stand-in for the checkpoint's own configuration file (not copied here).

config.json maps AutoConfig to this class (loaded with --trust-remote-code).  The
top level keeps every key of config.json as an attribute; ``text_config`` and
``vision_config`` become configuration objects of their own, each keeping its
section's keys (``model_type`` included) as attributes.  No class defaults are
applied: config.json gives every key the model reads.
"""

from transformers import PretrainedConfig


class SectionConfig(PretrainedConfig):
    def __init__(self, **kwargs):
        kind = kwargs.pop("model_type", None)
        for key, value in kwargs.items():
            object.__setattr__(self, key, value)
        super().__init__(**kwargs)
        if kind is not None:
            self.model_type = kind


class StandinConfig(PretrainedConfig):
    model_type = "vlm"

    def __init__(self, text_config=None, vision_config=None, **kwargs):
        self.text_config = SectionConfig(**text_config) if isinstance(text_config, dict) else text_config
        self.vision_config = (
            SectionConfig(**vision_config) if isinstance(vision_config, dict) else vision_config
        )
        for key, value in kwargs.items():
            object.__setattr__(self, key, value)
        super().__init__(**kwargs)
