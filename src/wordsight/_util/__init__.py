"""Private helpers shared by every layer: numerics written once, the error base, process caches."""
