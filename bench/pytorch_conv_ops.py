"""PyTorch's time per call for MiniGoogLeNet's 19 convolutions, next to `conv_ops`' figures.

    .venv/bin/python bench/pytorch_conv_ops.py [--threads 2] [--reps 5]

The shapes of `examples/conv_ops.rs`, read from it (batch 64, f32, channels-last as in the step
comparison): forward, input gradient and weight gradient through `aten::convolution_backward`,
milliseconds per call, best of `--reps` after one warm-up call. Run it in the same minutes as
`cargo run --release --example conv_ops` and compare the "patched" columns.
"""
import argparse
import pathlib
import re
import sys
import time

import torch
import torch.nn.functional as F

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "conv_ops.rs"


def shapes():
    """(c_in, c_out, kernel, stride, padding, input size) of each convolution, read from the
    `SHAPES` table of examples/conv_ops.rs, so that both time the same ones."""
    source = EXAMPLE.read_text()
    table = re.search(r"const SHAPES[^=]*=\s*\[(.*?)\];", source, re.S)
    if table is None:
        sys.exit(f"no SHAPES table in {EXAMPLE}")
    rows = re.findall(r"\(([\d,\s]+)\)", table.group(1))
    return [tuple(int(v) for v in row.split(",") if v.strip()) for row in rows]


def best_ms(f, reps):
    f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per figure (default 5)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    channels_last = torch.channels_last
    totals = [0.0, 0.0, 0.0]
    print(f"milliseconds per call, best of {args.reps}; PyTorch {torch.__version__}, "
          f"{args.threads} threads, channels-last")
    print("c_in c_out k s  hw  forward  input grad  weight grad")
    for c_in, c_out, k, s, p, hw in shapes():
        x = torch.randn(64, c_in, hw, hw).to(memory_format=channels_last)
        w = torch.randn(c_out, c_in, k, k).to(memory_format=channels_last)
        with torch.no_grad():
            dy = torch.randn_like(F.conv2d(x, w, None, s, p)).contiguous(
                memory_format=channels_last)

        def backward(which):
            return torch.ops.aten.convolution_backward(
                dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, which)

        with torch.no_grad():
            t = [
                best_ms(lambda: F.conv2d(x, w, None, s, p), args.reps),
                best_ms(lambda: backward([True, False, False]), args.reps),
                best_ms(lambda: backward([False, True, False]), args.reps),
            ]
        totals = [a + b for a, b in zip(totals, t)]
        print(f"{c_in:4} {c_out:5} {k} {s} {hw:3} {t[0]:8.1f} {t[1]:11.1f} {t[2]:12.1f}",
              flush=True)
    print("all convolutions: forward {:.0f} ms, input gradient {:.0f} ms, "
          "weight gradient {:.0f} ms".format(*totals))


if __name__ == "__main__":
    main()
