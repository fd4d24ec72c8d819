#!/usr/bin/env python
"""Regenerate the book's results: train every experiment × seed with `nbs/train_stage2.ipynb`, then run the tables and figures notebooks."""
# Each run is one papermill execution of the stage-2 notebook (which trains stage 1 first when its checkpoint is
# missing, evaluates on the test split and writes `results/{preset}-{name}-stage2-seed{seed}.json`). A run whose results
# JSON already exists is skipped, so an interrupted invocation resumes where it stopped. Executed notebooks go to
# `{runs_dir}/notebooks/`. Finally `nbs/tables.ipynb` and `nbs/figures.ipynb` are executed in place (and cleaned with
# `nbdev_clean`) so the book shows the new numbers.
from __future__ import annotations
import json, shlex, subprocess, sys, time
from pathlib import Path
from fastcore.script import Param, anno_parser
from gesthand.cli import arguments_of
from gesthand.experiment import EXPERIMENTS, PRESETS, MAIN_EXPERIMENTS, ORACLE_EXPERIMENTS, ABLATIONS

DEFAULT_EXPERIMENTS = [*MAIN_EXPERIMENTS, *ORACLE_EXPERIMENTS]

ROOT = Path(__file__).resolve().parents[1]

# parameters of the book notebooks and their defaults: only the ones that differ are injected, so a default run
# leaves no machine-specific `injected-parameters` cell in the committed notebooks
BOOK_PARAMETERS = {'tables': {'preset': 'book', 'results_dir': 'results', 'ablation_seeds': [0]},
                   'figures': {'preset': 'book', 'results_dir': 'results', 'runs_dir': 'runs', 'seed': 0}}
BOOK = tuple(BOOK_PARAMETERS)


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


def run_experiments(
    preset: Param('experiment preset', choices=sorted(PRESETS)) = 'book',
    experiments: Param('experiments to run', choices=list(EXPERIMENTS), nargs='+') = tuple(DEFAULT_EXPERIMENTS),
    ablations: Param(f'also run the ablations ({" ".join(ABLATIONS)})', bool) = False,
    seeds: Param('seeds', int, nargs='+') = (0, 1, 2),
    ablation_seeds: Param('seeds of the ablations (default: those of --seeds; the CPU book uses 0)', int, nargs='+') = None,
    param: Param('extra parameter KEY=VALUE of nbs/train_stage2.ipynb, repeatable (e.g. epochs=1, max_steps=5, device=cpu)',
                 action='append') = None,
    runs_dir: str = 'runs',  # checkpoints and executed notebooks, relative to the project root
    results_dir: str = 'results',  # results JSON, relative to the project root
    book: bool = True,  # at the end, execute nbs/tables.ipynb and nbs/figures.ipynb (--no-book: do not)
    dry_run: bool = False,  # print the papermill commands without running them
) -> int:
    "Train every experiment × seed with `nbs/train_stage2.ipynb`, then run the book notebooks; 1 if anything failed"
    experiments, seeds = list(experiments), list(seeds)
    runs_path, results_path = (ROOT / runs_dir).resolve(), (ROOT / results_dir).resolve()
    names = list(dict.fromkeys(experiments + (list(ABLATIONS) if ablations else [])))
    ablation_seeds = ablation_seeds or seeds
    extras = extra_params(param or [])
    summary = []
    # seed-major, so an interrupted invocation has every experiment of the first seeds rather than all seeds of a few
    for seed in dict.fromkeys(seeds + ablation_seeds):
        for name in names:
            if seed not in (ablation_seeds if name in ABLATIONS else seeds): continue
            results = results_path / f'{preset}-{name}-stage2-seed{seed}.json'
            if results.exists():
                summary.append((name, seed, 'skipped (results exist)', 0.0)); continue
            output = runs_path / 'notebooks' / f'{preset}-{name}-seed{seed}.ipynb'
            output.parent.mkdir(parents=True, exist_ok=True)
            params = [('name', name), ('seed', seed), ('preset', preset), ('runs_dir', runs_path),
                      ('results_dir', results_path), *extras]
            succeeded, seconds = run(papermill_command(ROOT / 'nbs/train_stage2.ipynb', output, params), dry_run)
            summary.append((name, seed, 'would run' if dry_run else 'done' if succeeded else f'FAILED (see {output})', seconds))
    if book:
        book_params = {'preset': preset, 'results_dir': results_dir, 'runs_dir': runs_dir, 'seed': seeds[0],
                       'ablation_seeds': ablation_seeds}
        for notebook in BOOK:
            path = ROOT / 'nbs' / f'{notebook}.ipynb'
            params = [(key, value) for key, value in book_params.items()
                      if key in BOOK_PARAMETERS[notebook] and value != BOOK_PARAMETERS[notebook][key]]
            succeeded, seconds = run(papermill_command(path, path, params, cwd=ROOT / 'nbs'), dry_run)
            if succeeded: succeeded, _ = run([str(Path(sys.executable).parent / 'nbdev_clean'), '--fname', str(path)], dry_run)
            summary.append((f'nbs/{notebook}.ipynb', '-', 'would run' if dry_run else 'done' if succeeded else 'FAILED', seconds))
    print(f'\nSummary ({preset} preset, results in {results_path}):')
    for name, seed, status, seconds in summary: print(f'  {name:<28} seed {seed!s:<3} {status:<40} {seconds:7.0f} s')
    return int(any('FAILED' in status for *_, status, _ in summary))


def main(argv: list[str] | None = None) -> int:
    "`run_experiments` with the options of `argv` (default: the command line), declared by its parameter comments"
    parser = anno_parser(run_experiments, prog='tools/run_experiments.py')
    return run_experiments(**arguments_of(run_experiments, parser.parse_args(argv)))


if __name__ == '__main__':
    sys.exit(main())
