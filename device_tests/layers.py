"""Where int8 hurts, layer by layer: the SNR of each layer's int8 output against the fp32 model's.

For every module of SL-FMDet (``model.body.stage1.0``, ``model.context2.cbam``, ...) the output of the int8
reference graph (``convert_pt2e``: the quantize/dequantize pairs every artifact executes in integer kernels) is
compared with the same module's fp32 output on the same real images. Nodes of the exported graph carry the
module they were traced in (``nn_module_stack``); a module's int8 output is its last node whose value has the
fp32 output's shape, taken after the quantize/dequantize pair that follows it (the value the next layer reads).
SNR accumulates along the network, so a sharp drop from one layer to the next marks where precision is lost.
"""

from __future__ import annotations

import numpy as np
import torch

Q_OPS = ("quantize_per_tensor", "dequantize_per_tensor")


def _after_qdq(node):
    """The dequantize node that re-reads ``node``'s output as int8 (or ``node`` where none follows)."""
    for user in node.users:
        if "quantize_per_tensor" in str(user.target) and "dequantize" not in str(user.target):
            for u2 in user.users:
                if "dequantize_per_tensor" in str(u2.target):
                    return u2
    return node


def int8_module_outputs(pm: torch.fx.GraphModule, x: torch.Tensor) -> dict[str, tuple[int, str, np.ndarray]]:
    """{module path: (index of its output node, op, int8 output as float)} of the converted int8 graph of
    ``pm`` on input ``x``, in the order the modules finish."""
    from slfm.quantize.quantized import fake_quant_module

    g = fake_quant_module(pm).net
    values: dict[str, torch.Tensor] = {}

    class Capture(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                values[n.name] = out
            return out

    with torch.no_grad():
        Capture(g).run(x)
    last: dict[str, tuple] = {}
    for i, node in enumerate(g.graph.nodes):
        stack = node.meta.get("nn_module_stack")
        if node.op != "call_function" or not stack or node.name not in values:
            continue
        if any(q in str(node.target) for q in Q_OPS):
            continue
        path = list(stack.values())[-1][0]
        for p in [path, *_parents(path)]:  # the node is also the latest output of each enclosing module
            last[p] = (i, node, str(node.target).split(".")[1] if "." in str(node.target) else str(node.target))
    out = {}
    for p, (i, node, op) in sorted(last.items(), key=lambda kv: kv[1][0]):  # in the order they finish
        v = values.get(_after_qdq(node).name, values[node.name])
        out[p] = (i, op, v.detach().float().numpy())
    return out


def _parents(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def layer_table(pm: torch.fx.GraphModule, model, inputs: list[np.ndarray]) -> list[dict]:
    """Per module, in execution order: SNR (dB) of the int8 output against fp32 over ``inputs``."""
    from slfm.convert.api import fp32_module
    from slfm.device_tests.compare import snr_db
    from slfm.device_tests.divergence import torch_module_outputs

    ref_mod = fp32_module(model)
    # leaves are skipped: BatchNorm is folded into the int8 convolutions, so a Conv2d's own output does not
    # exist in the int8 graph; every block (conv+bn+act, SSH branch, CBAM gate, FPN merge, head) does
    leaves = {n for n, m in ref_mod.named_modules() if n and not list(m.children())}
    acc: dict[str, dict] = {}
    order: list[str] = []
    for x in inputs:
        ref = torch_module_outputs(ref_mod, x)
        got = {
            p: v
            for p, v in int8_module_outputs(pm, torch.from_numpy(x)).items()
            if p not in leaves and p in ref and ref[p].shape == v[2].shape
        }
        deepest: dict[int, str] = {}  # one block per output: the innermost of those that end on the same node
        for p, (i, _, _) in got.items():
            if i not in deepest or p.count(".") > deepest[i].count("."):
                deepest[i] = p
        for path, (i, op, y) in got.items():
            r = ref[path]
            if deepest[i] != path:
                continue
            if path not in acc:
                acc[path] = {"op": op, "ref": [], "int8": []}
                order.append(path)
            acc[path]["ref"].append(r.ravel())
            acc[path]["int8"].append(y.ravel())
    rows = []
    for path in order:
        a = acc[path]
        rows.append(
            {
                "module": path.removeprefix("model."),
                "op": a["op"],
                "snr_db": snr_db(np.concatenate(a["ref"]), np.concatenate(a["int8"])),
                "depth": path.count("."),
            }
        )
    return rows


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# Where int8 loses precision: SL-FMDet {report['image_size']}, layer by layer",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Machine: {m['processor']} ({m['cpu_count']} CPUs), torch {m['torch']}  ",
        f"Quantized checkpoint: `{report['quantized']}` ({report['mode']}); fp32: `{report['checkpoint']}`  ",
        f"Inputs: {report['images']} real images of {report['data']}, letterboxed as deployed  ",
        "SNR (dB) of each block's int8 output (the converted graph every artifact runs: int8 tensors between "
        "integer kernels) against the same block's output in fp32 with the same weights (for QAT, its trained "
        "weights), so the table shows what int8 alone costs. Errors accumulate along the network: read where "
        "the SNR falls, not its level alone. Gate logits (`cbam.*.mlp`, `cbam.spatial.conv`) sit on another "
        "scale than the feature maps around them.",
        "",
        "| # | block | last op | SNR dB |",
        "| ---: | --- | --- | ---: |",
    ]
    for i, r in enumerate(report["layers"]):
        lines.append(f"| {i} | `{r['module']}` | {r['op']} | {r['snr_db']:.1f} |")
    lines += ["", f"![SNR by layer]({report['chart']})", ""]
    return "\n".join(lines)


def chart(report: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["layers"]
    fig, ax = plt.subplots(figsize=(11, 4), dpi=120)
    ax.plot(range(len(rows)), [r["snr_db"] for r in rows], marker="o", ms=3)
    step = max(1, len(rows) // 30)
    ax.set_xticks(range(0, len(rows), step), [rows[i]["module"] for i in range(0, len(rows), step)], rotation=75)
    ax.tick_params(axis="x", labelsize=6)
    ax.set(ylabel="SNR vs fp32, dB", title=f"int8 precision by layer ({report['mode']})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _layers_command():
    import click

    from slfm.layouts import KINDS
    from slfm.options import POSITIVE, threads_option

    @click.command("layers")
    @click.argument("quantized", required=False, default=None)
    @click.option("--checkpoint", default=None, help="the fp32 weights  [default: the quantized checkpoint's source]")
    @click.option("--data", type=click.Path(path_type=str), default=None, help="dataset root for the inputs")
    @click.option("--dataset", "kind", type=click.Choice(KINDS), default="moxa3k")
    @click.option("--split", default="holdout", show_default=True)
    @click.option("--images", type=POSITIVE, default=4, show_default=True)
    @threads_option
    @click.option("--out", default="reports/layers", show_default=True, help="report path without suffix")
    def layers(quantized, checkpoint, data, kind, split, images, threads, out):
        """Per-layer SNR of the int8 graph of QUANTIZED (a QAT/PTQ checkpoint, or 'aizoo' / 'moxa3k' for the
        bundled QAT) against fp32, on real images (without --data: scikit-image's photos)."""
        import shlex
        import sys
        import time
        from pathlib import Path

        from slfm.checkpoint import BUNDLED_QAT, MODELS_DIR, load_model, resolve_checkpoint
        from slfm.evaluate import machine
        from slfm.inputs import load_images, prepare_inputs
        from slfm.outputs import shown_path
        from slfm.quantize.calibrate import spread
        from slfm.quantize.quantized import load_quantized

        name = quantized or "moxa3k"
        path = MODELS_DIR / BUNDLED_QAT[name] if name in BUNDLED_QAT and not Path(name).exists() else Path(name)
        pm, qmodel, ck = load_quantized(path)
        if checkpoint is None:  # the bundled weights for a bundled QAT checkpoint, else the recorded source
            checkpoint = name if name in BUNDLED_QAT and not Path(name).exists() else ck["source_checkpoint"]
        checkpoint = resolve_checkpoint(checkpoint)
        model = load_model(checkpoint)[0]
        # against the quantized model's own fp32 weights (QAT moves them): the error int8 alone adds
        reference = qmodel if ck["quantizer"]["mode"] == "qat" else model
        if data:
            from slfm.core import prepare
            from slfm.images import read_image
            from slfm.voc import load_dataset

            samples = spread(load_dataset(data, kind, split), images)
            xs = [prepare(read_image(s.image, quiet=True), model.config)[0] for s in samples]
            where = f"{kind} {split} ({data})"
        else:
            imgs = load_images([], None)[:images]
            x, _ = prepare_inputs(imgs, model.config, model.config.image_size)
            xs = [x[i : i + 1] for i in range(len(x))]
            where = "scikit-image's photos"
        rows = layer_table(pm, reference, xs)
        out = Path(out)
        report = {
            "command": "slfm bench layers " + shlex.join(sys.argv[3:]),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": machine(),
            "quantized": shown_path(path),
            "mode": f"{ck['quantizer']['mode']}, activation ranges {ck['quantizer'].get('act_ranges', 'ema')}",
            "checkpoint": shown_path(checkpoint),
            "image_size": model.config.image_size,
            "images": len(xs),
            "data": where,
            "layers": rows,
            "chart": out.with_suffix(".png").name,
        }
        from slfm.bench import write

        write(report, out, markdown(report))  # JSON + Markdown, as every bench report
        chart(report, out.with_suffix(".png"))
        click.echo(out.with_suffix(".md").read_text())

    return layers


layers = _layers_command()
