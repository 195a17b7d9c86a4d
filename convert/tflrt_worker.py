"""Standalone worker run by tflite-runtime's own venv (numpy<2): no slfm imports.

Protocol (line based, on stdin/stdout): first line prints a JSON description of the model's tensors; then
for each request line ``<input.npy> <out_prefix>`` it runs the model on the raw input tensor (already in the
input's dtype and layout) and writes ``<out_prefix>_<i>.npy`` for each output in name order, then prints ``ok``.
"""

import json
import sys

import numpy as np


def main() -> None:
    model, threads = sys.argv[1], int(sys.argv[2])
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        from ai_edge_litert.interpreter import Interpreter
    try:
        it = Interpreter(model_path=model, num_threads=threads)
        it.allocate_tensors()
    except Exception as e:  # report load failures (e.g. LOGISTIC failed to prepare) as one line
        print(json.dumps({"error": " ".join(str(e).split())}), flush=True)
        return
    inp = it.get_input_details()[0]
    outs = sorted(it.get_output_details(), key=lambda d: d["name"])

    def desc(d):
        s, z = d["quantization"]
        return {"name": d["name"], "dtype": np.dtype(d["dtype"]).name, "scale": float(s), "zero_point": int(z)}

    print(json.dumps({"input": desc(inp), "outputs": [desc(o) for o in outs]}), flush=True)
    for line in sys.stdin:
        src, prefix = line.split()
        it.set_tensor(inp["index"], np.load(src))
        it.invoke()
        for i, o in enumerate(outs):
            np.save(f"{prefix}_{i}.npy", it.get_tensor(o["index"]))
        print("ok", flush=True)


if __name__ == "__main__":
    main()
