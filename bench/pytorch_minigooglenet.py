"""The same MiniGoogLeNet training step in PyTorch, for a side-by-side figure with `clrtrain bench`.

    python3 -m venv .venv && .venv/bin/pip install torch numpy
    .venv/bin/python bench/pytorch_minigooglenet.py [--steps 20] [--warmup 3] [--threads 2]
    python3 bench/pytorch_minigooglenet.py --device cuda --steps 200 --warmup 20   # on a GPU

Same architecture (conv → BatchNorm(eps 1e-3, momentum 0.01) → ReLU modules, inception and
downsample blocks, 7×7 average pool, dropout 0.5, linear), batch 64, SGD momentum 0.9, f32,
random images; loss read back every 8 steps as clrtrain does. Prints one JSON object; with
`--profile N`, torch.profiler's per-operator table of N more training steps on stderr.
"""
import argparse
import json
import sys
import time

import torch
from torch import nn


class ConvModule(nn.Sequential):
    def __init__(self, cin, cout, k, stride=1, padding="same"):
        super().__init__(
            nn.Conv2d(cin, cout, k, stride=stride, padding=padding),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
            nn.ReLU(inplace=True),
        )


class Inception(nn.Module):
    def __init__(self, cin, k1, k3):
        super().__init__()
        self.a = ConvModule(cin, k1, 1)
        self.b = ConvModule(cin, k3, 3)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class Downsample(nn.Module):
    def __init__(self, cin, k):
        super().__init__()
        self.conv = ConvModule(cin, k, 3, stride=2, padding=0)
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x):
        return torch.cat([self.conv(x), self.pool(x)], 1)


def mini_googlenet(classes=10):
    return nn.Sequential(
        ConvModule(3, 96, 3),
        Inception(96, 32, 32),
        Inception(64, 32, 48),
        Downsample(80, 80),
        Inception(160, 112, 48),
        Inception(160, 96, 64),
        Inception(160, 80, 80),
        Inception(160, 48, 96),
        Downsample(144, 96),
        Inception(240, 176, 160),
        Inception(336, 176, 160),
        nn.AvgPool2d(7),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(336, classes),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    # `cuda` for the GPU figure beside `clrtrain bench --backend wgpu|cuda` (cuDNN autotuned, as
    # clrtrain's GPU kernels are); `--threads` then only sets the host's threads.
    parser.add_argument("--device", default="cpu")
    # Where a step's time goes, per operator, to set beside `conv_ops`' per-call figures.
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="after the timings, profile N more training steps and print "
                             "torch.profiler's table (self CPU time per operator) to stderr")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    device = torch.device(args.device)
    torch.manual_seed(0)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = mini_googlenet().to(device, memory_format=fmt)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(args.batch_size, 3, 32, 32).to(device, memory_format=fmt)
    y = torch.randint(0, 10, (args.batch_size,)).to(device)

    def steps(n):
        losses = []
        for i in range(n):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            if len(losses) == 8:
                torch.stack(losses).sum().item()
                losses = []
        if losses:
            torch.stack(losses).sum().item()

    model.train()
    steps(args.warmup)
    start = time.perf_counter()
    steps(args.steps)
    train_s = time.perf_counter() - start

    if args.profile > 0:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            steps(args.profile)
        print(f"{args.profile} training steps, {args.threads} threads:", file=sys.stderr)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30),
              file=sys.stderr)

    model.eval()
    xe = torch.randn(args.eval_batch_size, 3, 32, 32).to(device, memory_format=fmt)
    batches = max(args.steps // 5, 2)
    with torch.no_grad():
        model(xe).argmax(1).tolist()
        start = time.perf_counter()
        for _ in range(batches):
            model(xe).argmax(1).tolist()
        eval_s = time.perf_counter() - start
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "device": str(device),
        "threads": torch.get_num_threads(),
        "channels_last": args.channels_last,
        "parameters": params,
        "train_images_per_s": args.batch_size * args.steps / train_s,
        "train_ms_per_batch": 1e3 * train_s / args.steps,
        "inference_images_per_s": args.eval_batch_size * batches / eval_s,
    }))


if __name__ == "__main__":
    main()
