"""The on-device runner shipped to a Raspberry Pi (or run in a tflite-runtime venv): numpy + a TFLite
interpreter (tflite-runtime, ai-edge-litert or TensorFlow Lite), OpenCV optional.

It is copied next to the numpy-only ``slfm`` modules it reuses (anchors, codec, nms, postprocess,
preprocess, config, artifact, metrics, draw) by :mod:`slfm.device_tests.bundle`, and run there as
``python3 -m pi_runner.parity`` (parity harness) or ``python3 -m pi_runner.detect`` (``slfm deploy pi``).
Nothing here imports torch.
"""
