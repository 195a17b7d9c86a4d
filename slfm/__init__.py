"""slfm: SL-FMDet face-mask detection, from training to verified on-device artifacts."""

__version__ = "0.1.0"
