"""The local demo: a fake API server, the real operator, and examples/ applied, narrated."""
