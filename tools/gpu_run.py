#!/usr/bin/env python
"""One GPU run of the book's main set for one seed, in a single call: generate the dataset with every core, then
`gesthand train 2` each experiment (stage 1 first where its checkpoint is missing, crops packed on first use), each
writing its results JSON with the device's name, images/s, FLOPs per image and MFU. An experiment starts only while the
time budget leaves room for one as long as the last, so the call ends within its limit with whole results."""
from __future__ import annotations
import argparse, os, subprocess, sys, time
from pathlib import Path

from gesthand.experiment import MAIN_EXPERIMENTS, PRESETS, experiment_config
from gesthand.synth import synthetic_interhand_root

ROOT = Path(__file__).resolve().parents[1]
# `gesthand` without an installed console script: the device image runs the project from its folder
GESTHAND = [sys.executable, '-c', 'import sys; from gesthand.cli import main; main(sys.argv[1:])']


def parse_args(argv=None) -> argparse.Namespace:
    "Command-line options"
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--preset', default='gpu', choices=sorted(PRESETS), help='experiment preset (default: gpu)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--experiments', nargs='+', default=list(MAIN_EXPERIMENTS), metavar='NAME',
                        help=f'in this order (default: {" ".join(MAIN_EXPERIMENTS)})')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='config override for every run, repeatable')
    parser.add_argument('--budget-s', type=float, default=480., help='start no experiment that would end after this (default: 480)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    "Run the experiments; the exit status is 1 if one failed"
    args = parse_args(argv)
    start = time.monotonic()
    config = experiment_config(args.preset, **dict(pair.split('=', 1) for pair in args.set))
    if not (config.data_root or os.environ.get('GESTHAND_INTERHAND_DIR')):
        root = synthetic_interhand_root(config.synthetic_preset, workers=os.cpu_count())
        print(f'dataset {root} ready after {time.monotonic() - start:.0f} s', flush=True)
    last, failed = 0., []
    for name in args.experiments:
        elapsed = time.monotonic() - start
        if elapsed + last > args.budget_s:
            print(f'{name}: not started ({elapsed:.0f} s spent, the last run took {last:.0f} s, budget {args.budget_s:.0f} s)')
            continue
        began = time.monotonic()
        sets = [arg for pair in args.set for arg in ('--set', pair)]
        command = [*GESTHAND, 'train', '2', '--preset', args.preset, '--name', name, '--seed', str(args.seed), *sets]
        if subprocess.run(command, cwd=ROOT).returncode != 0: failed.append(name)
        last = time.monotonic() - began
        print(f'{name}: {"failed" if name in failed else "done"} in {last:.0f} s', flush=True)
    print(f'total {time.monotonic() - start:.0f} s; failed: {", ".join(failed) or "none"}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
