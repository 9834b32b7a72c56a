"""regcollect: a garbage collector for container images, local (Docker Engine) and remote (registries)."""

__version__ = "0.1.0"
