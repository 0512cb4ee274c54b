"""The host: the Trainer, which is the plugin manager, and what it drives."""
