"""Stage 5, rendering finished results: the JSON document, rich tables,
Markdown and the --explain text.  Renderers format; they never compute."""
