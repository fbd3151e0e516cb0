"""The eyejax app layer: command lines, Hydra configuration, W&B logging, benchmark, reports.

Modules here may import the library (everything else under ``eyejax/``); the library never imports
them (tests/test_layers.py checks it). Imports of the library inside the commands' functions are
deliberate: ``eyejax --help`` and a bad override answer before JAX and the models load.
"""
