"""Stage 1, what the user gave: the MODEL argument (preset, YAML, config.json,
directory, cached hub id), the presets, and the serving options."""
