"""Datasets the plugin generates: :mod:`recbole_umi.datasets.synth`, a profile-rich benchmark."""
