"""eyejax's Hydra configuration tree. Installed as the package ``eyejax.conf`` (see setup.py), so an
installed eyejax finds it as ``pkg://eyejax.conf`` from any folder; this file makes it a package."""
