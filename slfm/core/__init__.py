"""The NumPy-only inference core: everything between a BGR image and detections in its pixels that does not
run the network. Importable without torch or OpenCV (``tests/test_core.py`` proves it), so the Raspberry Pi
bundle ships this package whole (:mod:`slfm.device_tests.bundle`) and every Python path calls it:
:class:`slfm.predictor.Predictor`, the parity reference, the Pi runner, the golden vectors.

    x, frame = prepare(image, meta)                 # letterbox, (pixel - mean) * pixel_scale, NCHW float32
    q = quantize(x, scale, zero_point)              # TFLite's rounding: halves away from zero
    dets = decode((loc, scores), meta, DEMO, frame) # anchors + postprocess + letterbox undone: image pixels
    m = map50(dets_list, gt_boxes, gt_labels)       # VOC mAP@0.5

The Kotlin, Swift and JS ports mirror these functions and are held to them by golden vectors (``slfm.golden``).
"""

from slfm.anchors import anchors, feature_sizes
from slfm.codec import decode as decode_offsets
from slfm.core.evaluation import CLASS_NAMES, map50
from slfm.core.image import letterbox, letterbox_geometry, normalize, resize, resize_numpy, resize_short_side
from slfm.core.outputs import meta_output_order, output_order
from slfm.core.pipeline import MODES, Frame, cached_anchors, decode, model_input, prepare, to_image_pixels
from slfm.core.quant import dequantize, quantize, round_half_away
from slfm.metrics import ImageDetections, evaluate
from slfm.postprocess import DEMO, EVAL, PostprocessConfig, postprocess, softmax

__all__ = [
    "CLASS_NAMES",
    "DEMO",
    "EVAL",
    "MODES",
    "Frame",
    "ImageDetections",
    "PostprocessConfig",
    "anchors",
    "cached_anchors",
    "decode",
    "decode_offsets",
    "dequantize",
    "evaluate",
    "feature_sizes",
    "letterbox",
    "letterbox_geometry",
    "map50",
    "meta_output_order",
    "model_input",
    "normalize",
    "output_order",
    "postprocess",
    "prepare",
    "quantize",
    "resize",
    "resize_numpy",
    "resize_short_side",
    "round_half_away",
    "softmax",
    "to_image_pixels",
]
