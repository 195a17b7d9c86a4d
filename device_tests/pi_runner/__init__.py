"""The on-device runner shipped to a Raspberry Pi (or run in a tflite-runtime venv): numpy + a TFLite
interpreter (tflite-runtime, ai-edge-litert or TensorFlow Lite), OpenCV optional.

It is copied next to the NumPy-only inference core ``slfm.core`` (whole) and the ``slfm`` modules it builds on
(anchors, codec, nms, postprocess, config, artifact, metrics, draw) by :mod:`slfm.device_tests.bundle`, and run there as
``python3 -m pi_runner.parity`` (parity harness) or ``python3 -m pi_runner.detect`` (``slfm deploy pi``).
Nothing here imports torch.
"""
