#!/usr/bin/env python
"""Regenerate the book's results: train every experiment × seed with `nbs/train_stage2.ipynb`, then run the tables and figures notebooks."""
# Each run is one papermill execution of the stage-2 notebook (which trains stage 1 first when its checkpoint is
# missing, evaluates on the test split and writes `results/{preset}-{name}-stage2-seed{seed}.json`). A run whose results
# JSON already exists is skipped, so an interrupted invocation resumes where it stopped. Executed notebooks go to
# `{runs_dir}/notebooks/`. Finally `nbs/tables.ipynb` and `nbs/figures.ipynb` are executed in place (and cleaned with
# `nbdev_clean`) so the book shows the new numbers.
from __future__ import annotations
import argparse, json, shlex, subprocess, sys, time
from pathlib import Path
from gesthand.experiment import EXPERIMENTS, PRESETS, MAIN_EXPERIMENTS, ORACLE_EXPERIMENTS, ABLATIONS

DEFAULT_EXPERIMENTS = [*MAIN_EXPERIMENTS, *ORACLE_EXPERIMENTS]

ROOT = Path(__file__).resolve().parents[1]

# parameters of the book notebooks and their defaults: only the ones that differ are injected, so a default run
# leaves no machine-specific `injected-parameters` cell in the committed notebooks
BOOK_PARAMETERS = {'tables': {'preset': 'book', 'results_dir': 'results', 'ablation_seeds': [0]},
                   'figures': {'preset': 'book', 'results_dir': 'results', 'runs_dir': 'runs', 'seed': 0}}
BOOK = tuple(BOOK_PARAMETERS)


def parse_args(argv=None) -> argparse.Namespace:
    "Command-line options"
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--preset', default='book', choices=sorted(PRESETS), help='experiment preset (default: book)')
    parser.add_argument('--experiments', nargs='+', default=DEFAULT_EXPERIMENTS, choices=list(EXPERIMENTS), metavar='NAME',
                        help=f'experiments to run (default: {" ".join(DEFAULT_EXPERIMENTS)})')
    parser.add_argument('--ablations', action='store_true', help=f'also run the ablations ({" ".join(ABLATIONS)})')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2], help='seeds (default: 0 1 2)')
    parser.add_argument('--ablation-seeds', nargs='+', type=int, metavar='SEED',
                        help='seeds of the ablations (default: those of --seeds; the CPU book uses 0)')
    parser.add_argument('--param', action='append', default=[], metavar='KEY=VALUE',
                        help='extra parameter of nbs/train_stage2.ipynb, repeatable (e.g. epochs=1, max_steps=5, device=cpu)')
    parser.add_argument('--runs-dir', default='runs', help='checkpoints and executed notebooks, relative to the project root (default: runs)')
    parser.add_argument('--results-dir', default='results', help='results JSON, relative to the project root (default: results)')
    parser.add_argument('--no-book', action='store_true', help='do not run nbs/tables.ipynb and nbs/figures.ipynb')
    parser.add_argument('--dry-run', action='store_true', help='print the papermill commands without running them')
    return parser.parse_args(argv)


def extra_params(pairs: list[str]) -> list[tuple[str, str]]:
    "(key, value) of each `KEY=VALUE` string"
    for pair in pairs:
        if '=' not in pair: raise SystemExit(f'--param expects KEY=VALUE, got {pair!r}')
    return [tuple(pair.split('=', 1)) for pair in pairs]


def papermill_command(notebook: Path, output: Path, params: list[tuple[str, object]], cwd: Path | None = None) -> list[str]:
    "The papermill command line executing `notebook` into `output` with `params`"
    command = [sys.executable, '-m', 'papermill', str(notebook), str(output)]
    # papermill's -p reads every value as a scalar, so lists go through its YAML option (JSON is YAML)
    for key, value in params: command += ['-y', json.dumps({key: value})] if isinstance(value, list) else ['-p', key, str(value)]
    return command + (['--cwd', str(cwd)] if cwd else [])


def run(command: list[str], dry_run: bool) -> tuple[bool, float]:
    "Run `command` from the project root; (succeeded, seconds)"
    print('$', shlex.join(command), flush=True)
    if dry_run: return True, 0.0
    start = time.perf_counter()
    succeeded = subprocess.run(command, cwd=ROOT).returncode == 0
    return succeeded, time.perf_counter() - start


def main(argv=None) -> int:
    "Run the experiments, then the book notebooks; the exit status is 1 if anything failed"
    args = parse_args(argv)
    runs_dir, results_dir = (ROOT / args.runs_dir).resolve(), (ROOT / args.results_dir).resolve()
    names = list(dict.fromkeys(args.experiments + (list(ABLATIONS) if args.ablations else [])))
    ablation_seeds = args.ablation_seeds or args.seeds
    extras = extra_params(args.param)
    summary = []
    # seed-major, so an interrupted invocation has every experiment of the first seeds rather than all seeds of a few
    for seed in dict.fromkeys(args.seeds + ablation_seeds):
        for name in names:
            if seed not in (ablation_seeds if name in ABLATIONS else args.seeds): continue
            results = results_dir / f'{args.preset}-{name}-stage2-seed{seed}.json'
            if results.exists():
                summary.append((name, seed, 'skipped (results exist)', 0.0)); continue
            output = runs_dir / 'notebooks' / f'{args.preset}-{name}-seed{seed}.ipynb'
            output.parent.mkdir(parents=True, exist_ok=True)
            params = [('name', name), ('seed', seed), ('preset', args.preset), ('runs_dir', runs_dir),
                      ('results_dir', results_dir), *extras]
            succeeded, seconds = run(papermill_command(ROOT / 'nbs/train_stage2.ipynb', output, params), args.dry_run)
            summary.append((name, seed, 'would run' if args.dry_run else 'done' if succeeded else f'FAILED (see {output})', seconds))
    if not args.no_book:
        book_params = {'preset': args.preset, 'results_dir': args.results_dir, 'runs_dir': args.runs_dir, 'seed': args.seeds[0],
                       'ablation_seeds': ablation_seeds}
        for notebook in BOOK:
            path = ROOT / 'nbs' / f'{notebook}.ipynb'
            params = [(key, value) for key, value in book_params.items()
                      if key in BOOK_PARAMETERS[notebook] and value != BOOK_PARAMETERS[notebook][key]]
            succeeded, seconds = run(papermill_command(path, path, params, cwd=ROOT / 'nbs'), args.dry_run)
            if succeeded: succeeded, _ = run([str(Path(sys.executable).parent / 'nbdev_clean'), '--fname', str(path)], args.dry_run)
            summary.append((f'nbs/{notebook}.ipynb', '-', 'would run' if args.dry_run else 'done' if succeeded else 'FAILED', seconds))
    print(f'\nSummary ({args.preset} preset, results in {results_dir}):')
    for name, seed, status, seconds in summary: print(f'  {name:<28} seed {seed!s:<3} {status:<40} {seconds:7.0f} s')
    return int(any('FAILED' in status for *_, status, _ in summary))


if __name__ == '__main__':
    sys.exit(main())
