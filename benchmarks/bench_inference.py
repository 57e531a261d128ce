"""What stylising costs: throughput of `Stylizer` and peak memory of tiled vs whole-image inference,
each as a ratio to a plain loop that calls ``generator(x)`` on a ready tensor.

    python -m benchmarks.bench_inference            # about 3 CPU-minutes on 2 cores (measured: 172 s CPU)
    python -m benchmarks.bench_inference --full     # reference generator (ngf 64, 9 blocks), longer
    python -m benchmarks.bench_inference --device cuda

Throughput uses the quick-start generator (ngf 32, 6 blocks) at 256 and 1024 px, batch 1 and
batched. Memory runs each case in a fresh child process and reads its peak resident set size, at
2048 and 4096 px: ``VmHWM`` from ``/proc/self/status`` on Linux, else ``resource.getrusage``
(tracemalloc does not see torch's allocations; ``ru_maxrss`` survives ``exec``, so on Linux it would
start at the RSS of the parent that forked the child). A
whole-image pass's peak is set by its full-resolution activations (ngf channels x pixels), which the
residual blocks (at 1/4 resolution) barely change; by default the memory cases use ngf 8 and 1 block
so that the 4096 px passes fit the time budget on a CPU (a 4096 px pass at ngf 32 takes minutes
there). ``--memory-ngf 32 --memory-blocks 6`` measures the quick-start size. Weights are random:
speed and memory do not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from functools import partial

KIB_PER_MB = 1024.0  # VmHWM and ru_maxrss (Linux) are in KiB


def peak_rss_mb() -> float:
    """This process's peak resident set size since it was exec'd, in MB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / KIB_PER_MB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MB


def build_generator(ngf: int, blocks: int, device):
    import torch

    from ganstyle.networks import ResnetGenerator

    torch.manual_seed(0)
    return ResnetGenerator(ngf=ngf, n_blocks=blocks).eval().requires_grad_(False).to(device)


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(run, count: int, repeats: int, device) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    sync(device)
    return count * repeats / (time.perf_counter() - start)


def throughput(args) -> list[tuple[str, float, float]]:
    """(case, plain loop images/s, Stylizer images/s) for each size and batch size."""
    import torch

    from ganstyle.inference import Stylizer

    device = torch.device(args.device)
    generator = build_generator(args.ngf, args.blocks, device)
    stylizer = Stylizer(generator, size_multiple=4, device=device, tile=None, batch_size=max(args.batches))
    with torch.inference_mode():  # warm-up: allocator and kernel selection, once, on a small image
        stylizer(torch.rand(1, 3, 64, 64))
    rows = []
    for size in (256, 1024):
        repeats = args.repeats if size == 256 else 1
        for batch in args.batches if size == 256 else (1, 2):
            pixels = torch.rand(batch, 3, size, size)
            network_input = (pixels * 2 - 1).to(device)
            with torch.inference_mode():
                plain = images_per_second(partial(generator, network_input), batch, repeats, device)
                ours = images_per_second(partial(stylizer, pixels), batch, repeats, device)
            rows.append((f"{size} px, batch {batch}", plain, ours))
            print(
                f"  {rows[-1][0]:>18}: plain {plain:8.2f} img/s, Stylizer {ours:8.2f} img/s ({ours / plain:.2f}x)",
                flush=True,
            )
    return rows


def child(case: str, size: int, ngf: int, blocks: int, device_name: str) -> None:
    """One memory case in this (fresh) process; prints peak RSS before and after inference as JSON."""
    import numpy as np
    import torch
    from PIL import Image

    from ganstyle.inference import Stylizer

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    device = torch.device(device_name)
    generator = build_generator(ngf, blocks, device)
    array = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    if case == "plain":
        network_input = torch.from_numpy(array).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
    else:
        image = Image.fromarray(array)
        stylizer = Stylizer(
            generator, size_multiple=4, device=device, tile=None if case == "whole" else 512, overlap=128
        )
    del array
    setup = peak_rss_mb()
    start = time.perf_counter()
    with torch.inference_mode():
        output = generator(network_input) if case == "plain" else stylizer(image)
    sync(device)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    gpu = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    del output
    print(json.dumps({"setup_mb": setup, "peak_mb": peak, "seconds": seconds, "gpu_mb": gpu}))


def memory(args) -> list[tuple[int, str, dict]]:
    rows = []
    for size in (2048, 4096):
        for case in ("plain", "whole", "tiled"):
            command = [sys.executable, "-m", "benchmarks.bench_inference", "--child", case, str(size)]
            command += [
                "--memory-ngf",
                str(args.memory_ngf),
                "--memory-blocks",
                str(args.memory_blocks),
                "--device",
                args.device,
            ]
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env={**os.environ, "BENCH_THREADS": str(args.threads)},
            )
            if result.returncode != 0:
                print(f"  {size} px {case}: failed ({result.stderr.strip().splitlines()[-1:]})", flush=True)
                continue
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append((size, case, measured))
            print(
                f"  {size} px {case:>5}: peak RSS {measured['peak_mb']:7.0f} MB "
                f"(+{measured['peak_mb'] - measured['setup_mb']:6.0f} MB during inference), {measured['seconds']:6.1f} s",
                flush=True,
            )
    return rows


def print_memory_table(rows: list[tuple[int, str, dict]]) -> None:
    plain = {size: measured for size, case, measured in rows if case == "plain"}
    print(
        "\n| size | case | peak RSS (MB) | added by inference (MB) | vs plain loop | time (s) | vs plain loop |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size, case, measured in rows:
        base = plain.get(size)
        added = measured["peak_mb"] - measured["setup_mb"]
        ratio = f"{added / (base['peak_mb'] - base['setup_mb']):.2f}x" if base else "n/a"
        speed = f"{measured['seconds'] / base['seconds']:.2f}x" if base else "n/a"
        print(
            f"| {size} | {case} | {measured['peak_mb']:.0f} | {added:.0f} | {ratio} | {measured['seconds']:.1f} | {speed} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--full", action="store_true", help="reference generator: ngf 64, 9 blocks, for both parts"
    )
    parser.add_argument(
        "--ngf", type=int, default=32, help="throughput generator width (default 32, quick-start)"
    )
    parser.add_argument(
        "--blocks", type=int, default=6, help="throughput generator residual blocks (default 6)"
    )
    parser.add_argument(
        "--memory-ngf", type=int, default=8, help="memory generator width (default 8, see above)"
    )
    parser.add_argument("--memory-blocks", type=int, default=1, help="memory generator blocks (default 1)")
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[1, 4], help="batch sizes at 256 px (default 1 4)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats at 256 px (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--skip-memory", action="store_true", help="throughput only")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]), args.memory_ngf, args.memory_blocks, args.device)
        return
    if args.full:
        args.ngf, args.blocks, args.memory_ngf, args.memory_blocks = 64, 9, 64, 9
    import torch

    import ganstyle  # noqa: F401  (before anything imports torchvision)

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(
        f"Throughput, ResNet generator ngf {args.ngf}, {args.blocks} blocks, {args.device}, {args.threads} threads:"
    )
    rows = throughput(args)
    print("\n| case | plain loop (img/s) | Stylizer (img/s) | ratio |\n| --- | --- | --- | --- |")
    for case, plain, ours in rows:
        print(f"| {case} | {plain:.2f} | {ours:.2f} | {ours / plain:.2f}x |")
    if not args.skip_memory:
        print(
            f"\nPeak memory, ngf {args.memory_ngf}, {args.memory_blocks} block(s); tiles 512 px, overlap 128:"
        )
        print_memory_table(memory(args))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
