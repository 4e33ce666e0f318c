"""A pass-through stand-in for the checkpoint's own configuration file (not copied here).

config.json maps AutoConfig to this class (loaded with --trust-remote-code); it keeps
every key of config.json as an attribute, with the dicts inside the keys named in
NESTED (lists of per-layer settings) readable as attributes.  The published class's
own defaults are not applied: config.json gives every key the model reads.  A
per_layer_config is left to PretrainedConfig (transformers' heterogeneous configs).
"""

from transformers import PretrainedConfig

NESTED = ()
# set by PretrainedConfig itself, after the other keys (transformers' heterogeneous configs)
LATE = ("per_layer_config",)


class _Attrs(dict):
    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _attrs(value):
    if isinstance(value, dict):
        return _Attrs({k: _attrs(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_attrs(v) for v in value]
    return value


class StandinConfig(PretrainedConfig):
    model_type = "plamo3"

    def __init__(self, **kwargs):
        for key in NESTED:
            if key in kwargs:
                kwargs[key] = _attrs(kwargs[key])
        # the keys are attributes before the base class reads them (its RoPE checks do)
        for key, value in kwargs.items():
            if key not in LATE:
                object.__setattr__(self, key, value)
        super().__init__(**kwargs)
