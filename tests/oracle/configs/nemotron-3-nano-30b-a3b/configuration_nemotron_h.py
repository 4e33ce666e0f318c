"""Stand-in for the checkpoint's own configuration_nemotron_h.py (not copied here).

The published config.json maps AutoConfig to configuration_nemotron_h.NemotronHConfig,
so vLLM releases whose transformers has no nemotron_h model type load it as
remote code; this file hands them the NemotronHConfig class that vLLM ships
(or, where transformers has one, transformers' own).
"""

try:
    from vllm.transformers_utils.configs.nemotron_h import NemotronHConfig
except ImportError:
    from transformers import NemotronHConfig

__all__ = ["NemotronHConfig"]
