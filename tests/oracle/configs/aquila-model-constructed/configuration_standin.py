"""A pass-through stand-in for the checkpoint's own configuration file (not copied here).

config.json maps AutoConfig to this class (loaded with --trust-remote-code); it keeps
every key of config.json as an attribute, with the dicts of a block_configs list readable
as attributes.  The published class's own defaults are not applied: config.json gives
every key the model reads.
"""

from transformers import PretrainedConfig


class _Attrs(dict):
    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class StandinConfig(PretrainedConfig):
    model_type = "aquila"

    def __init__(self, **kwargs):
        blocks = kwargs.get("block_configs")
        if isinstance(blocks, list):
            kwargs["block_configs"] = [
                _Attrs({k: _Attrs(v) if isinstance(v, dict) else v for k, v in b.items()}) for b in blocks
            ]
        # the keys are attributes before the base class reads them (its RoPE checks do)
        for key, value in kwargs.items():
            object.__setattr__(self, key, value)
        super().__init__(**kwargs)
