"""A stand-in for a checkpoint's remote configuration code (not the original).

It keeps every key of config.json as an attribute and turns the nested
sections named in SECTIONS into config objects: transformers' class for their
model_type when it has one, a plain PretrainedConfig otherwise.  Checkpoints
whose own config class extends a text model's (MiniCPM-V: Qwen2, Qwen3 or
Llama) get a stand-in extending that class, so its defaults apply as they
would.  Written for kvplan's oracle runs, where the hub's configuration_*.py
is not available.
"""

from transformers import AutoConfig, LlamaConfig, PretrainedConfig, Qwen2Config, Qwen3Config
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

SECTIONS = ("vision_config", "llm_config", "text_config", "audio_config")


def _section(values):
    values = dict(values)
    model_type = values.pop("model_type", None)
    if model_type in CONFIG_MAPPING:
        return AutoConfig.for_model(model_type, **values)
    return PretrainedConfig(**values)


class StandinConfig(PretrainedConfig):
    model_type = "standin"

    def __init__(self, **kwargs):
        sections = {k: kwargs.pop(k) for k in SECTIONS if isinstance(kwargs.get(k), dict)}
        super().__init__(**kwargs)
        for key, values in sections.items():
            setattr(self, key, _section(values))


def _with_sections(base):
    class Standin(base):
        def __init__(self, **kwargs):
            for key in SECTIONS:
                if isinstance(kwargs.get(key), dict):
                    kwargs[key] = _section(kwargs[key])
            super().__init__(**kwargs)

    Standin.__name__ = f"Standin{base.__name__}"
    return Standin


StandinQwen2Config = _with_sections(Qwen2Config)
StandinQwen3Config = _with_sections(Qwen3Config)
StandinLlamaConfig = _with_sections(LlamaConfig)
